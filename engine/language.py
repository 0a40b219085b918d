"""Which language a customer writes in, without a model: enough to pick a reply language, file a
conversation under a language filter and tell a Chinese query from an English one."""
from __future__ import annotations

import re

# Han ideographs (and CJK punctuation) versus Latin letters.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")
_LATIN = re.compile(r"[A-Za-z]")

LANGUAGES = {"zh": "Chinese", "en": "English", "ja": "Japanese", "ko": "Korean"}


def detect_language(text: str) -> str:
    """``"zh"``, ``"en"``, ``"ja"``, ``"ko"`` or ``""`` (no letters to judge by).

    One Han character carries about as much as a short English word, so Han characters are
    weighed ×3 against Latin letters: "我的 iPhone 15 坏了" is Chinese, "what does 发票 mean" English.
    """
    kana = len(_KANA.findall(text))
    if kana:
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if not han and not latin:
        return ""
    return "zh" if han * 3 >= latin else "en"
