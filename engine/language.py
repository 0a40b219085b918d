"""Which language a customer writes in: enough to pick a reply language (the persona's language
policy, the fixed texts), file a conversation under a language filter and tell a Chinese query
from an English one.

Contract: ``detect_language(text)`` returns an ISO 639-1 code from ``LANGUAGES`` or ``""`` (no
letters to judge by). Django-free, no network, no model download: the statistical part is
py3langid (a maintained fork of langid.py, 97 languages, its 4.5 MB model inside the wheel),
loaded once per process (about 1 s; ``warm_up`` at server start), then ~0.1 ms per message.

Why these rules around the classifier:
- Scripts decide first, because they are certain and short messages are not: kana → ja,
  hangul → ko, Han characters (weighed ×3 against Latin letters, so "我的 iPhone 15 坏了" is Chinese
  and "what does 发票 mean" English) → zh, then Cyrillic, Arabic, Thai, Hebrew, Greek, Devanagari.
- A Latin-script message of one to three words ("hola", "merci", "danke schön") is too short for
  character n-grams (langid says "hallo" is Finnish); a small list of the courtesy words customers
  open with decides those, then the classifier restricted to ``LANGUAGES``, and English when it is
  not confident (a wrong guess would answer the customer in a language they did not write).
"""
from __future__ import annotations

import re
import threading
import unicodedata
from typing import Any

# The languages Anyhour recognises (and the persona's language policy can name), code → name.
LANGUAGES = {
    "zh": "Chinese", "en": "English", "ja": "Japanese", "ko": "Korean", "es": "Spanish", "fr": "French",
    "de": "German", "pt": "Portuguese", "it": "Italian", "nl": "Dutch", "ru": "Russian", "uk": "Ukrainian",
    "pl": "Polish", "tr": "Turkish", "id": "Indonesian", "ms": "Malay", "vi": "Vietnamese", "th": "Thai",
    "ar": "Arabic", "he": "Hebrew", "hi": "Hindi", "el": "Greek", "sv": "Swedish", "da": "Danish",
    "no": "Norwegian", "fi": "Finnish", "cs": "Czech", "ro": "Romanian", "hu": "Hungarian",
}

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_SCRIPTS = [  # (pattern, language) for scripts one language dominates in customer messages
    (re.compile(r"[\u0400-\u04ff]"), "ru"),
    (re.compile(r"[\u0600-\u06ff]"), "ar"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0900-\u097f]"), "hi"),
]
_WORD = re.compile(r"[^\W\d_]+")

# Words short messages open or close with, where n-grams cannot tell (and would guess wrong).
_SHORT_WORDS = {
    "en": "hi hello hey thanks thank thx ok okay yes no bye please help human agent person cheers",
    "es": "hola gracias adiós adios buenos buenas días dias sí vale ayuda por favor persona",
    "fr": "bonjour bonsoir salut merci ça oui non revoir aide svp",
    "de": "hallo danke vielen dank tschüss tschuss ja nein bitte hilfe guten tag morgen abend servus moin",
    "pt": "olá ola obrigado obrigada oi tchau sim ajuda bom dia boa tarde noite",
    "it": "ciao grazie buongiorno buonasera arrivederci aiuto prego",
    "nl": "hoi dag bedankt dankjewel doei alsjeblieft",
    "tr": "merhaba selam teşekkürler sağol evet hayır",
    "id": "halo terima kasih makasih tolong",
    "vi": "xin chào chào cảm ơn cám",
    "pl": "cześć dzień dobry dziękuję dzięki",
    "sv": "hej tack",
}
_SHORT = {word: code for code, words in _SHORT_WORDS.items() for word in words.split()}

_CONFIDENT = 0.5  # langid's normalised probability below which a Latin message is taken as English

_identifier: Any = None
_lock = threading.Lock()


def _classifier() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages([code for code in LANGUAGES if code not in ("zh", "ja", "ko")])
                _identifier = identifier
    return _identifier


def warm_up() -> None:
    """Load the classifier now (about 1 s of CPU) rather than on the first customer message."""
    _classifier().classify("warm up")


def _latin(text: str) -> str:
    words = [w.casefold() for w in _WORD.findall(unicodedata.normalize("NFC", text))]
    if len(words) <= 3:
        for word in words:
            if word in _SHORT:
                return _SHORT[word]
    if len(words) <= 1 and sum(len(w) for w in words) <= 4:
        return "en"
    code, probability = _classifier().classify(text)
    return str(code) if probability >= _CONFIDENT and code in LANGUAGES else "en"


def detect_language(text: str) -> str:
    """A code of ``LANGUAGES`` or ``""`` (no letters to judge by)."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    han = len(_HAN.findall(text))
    latin = len(_LATIN.findall(text))
    if han and han * 3 >= latin:
        return "zh"
    if not latin:
        for pattern, code in _SCRIPTS:
            if pattern.search(text):
                if code == "ru" and re.search(r"[іїєґ]", text.casefold()):
                    return "uk"
                return code
        return ""
    return _latin(text)
