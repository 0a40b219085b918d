"""Token counts without a tokenizer, and fitting a conversation's history into a token budget."""
from __future__ import annotations

import re
from collections.abc import Sequence

# CJK ideographs, kana, hangul and full-width punctuation: about one token per character in the
# tokenizers vLLM usually serves (Qwen, Llama 3); other text about one token per four characters.
_WIDE = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_PER_MESSAGE_OVERHEAD = 4  # role markers and separators of the chat template


def estimate_tokens(text: str) -> int:
    """A tokenizer-free upper-leaning estimate, good enough to keep prompts within budget."""
    wide = len(_WIDE.findall(text))
    narrow = len(text) - wide
    return wide + (narrow + 3) // 4


def message_tokens(message: dict[str, str]) -> int:
    return estimate_tokens(message["content"]) + _PER_MESSAGE_OVERHEAD


def fit_history(system_prompt: str, turns: Sequence[dict[str, str]], budget: int) -> list[dict[str, str]]:
    """Return the engine messages: system prompt, then the newest turns that fit ``budget``.

    ``turns`` run oldest to newest and end with the message being answered. The system prompt
    and that last message are always kept; older turns are dropped first, and the kept history
    never starts with an assistant turn (a reply to a question that was dropped).
    """
    if not turns:
        raise ValueError("fit_history needs at least the message to answer")
    system = {"role": "system", "content": system_prompt}
    used = message_tokens(system) + message_tokens(turns[-1])
    kept: list[dict[str, str]] = []
    for turn in reversed(turns[:-1]):
        cost = message_tokens(turn)
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    while kept and kept[0]["role"] != "user":
        kept.pop(0)
    return [system, *kept, turns[-1]]
