"""The output word filter: words the customer must never see in an answer are replaced as the
answer streams, before the first frame that would carry them.

Contract:
- The words come from ``OUTPUT_FILTER_WORDS`` (comma-separated) and ``OUTPUT_FILTER_FILE`` (one
  per line, ``#`` comments), matched case-insensitively, in every language alike; each match is
  replaced by as many ``*`` as it has characters (so offsets of later text do not move).
- ``StreamFilter.feed`` takes the engine's text piece by piece and returns what may be sent now.
  A word can arrive split across pieces, so the last ``longest word - 1`` characters are held
  back until the next piece (or ``finish``) shows whether they start a listed word: the customer
  never sees the beginning of a filtered word. ``replaced`` counts the replacements, which
  chat/generation.py records on the message (``Message.output_filtered``).

Admin-edited lists and per-language lists and patterns are not built yet (docs/privacy.md).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from django.conf import settings


def _words() -> tuple[str, ...]:
    words = [w.strip() for w in settings.OUTPUT_FILTER_WORDS]
    if settings.OUTPUT_FILTER_FILE:
        for line in Path(settings.OUTPUT_FILTER_FILE).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.append(line)
    return tuple(sorted({w for w in words if w}, key=len, reverse=True))  # longest first wins


@functools.lru_cache(maxsize=8)
def _compiled(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


class StreamFilter:
    def __init__(self, pattern: re.Pattern[str], longest: int):
        self.pattern = pattern
        self.hold = max(longest - 1, 0)
        self.held = ""
        self.replaced = 0

    def _release(self, text: str, cut: int) -> str:
        out, last = [], 0
        for match in self.pattern.finditer(text):
            if match.start() >= cut:
                break  # may still grow into a longer word: decided with the next piece
            out.append(text[last:match.start()])
            out.append("*" * (match.end() - match.start()))
            self.replaced += 1
            last = match.end()
        end = max(cut, last)
        out.append(text[last:end])
        self.held = text[end:]
        return "".join(out)

    def feed(self, piece: str) -> str:
        text = self.held + piece
        return self._release(text, max(len(text) - self.hold, 0))

    def finish(self) -> str:
        """Everything still held, filtered (the answer ended, or was stopped or cut off)."""
        text, self.held = self.held, ""
        return self._release(text, len(text))


def stream_filter() -> StreamFilter | None:
    """A filter for one answer, or None when no word is listed."""
    words = _words()
    pattern = _compiled(words)
    return StreamFilter(pattern, len(words[0])) if pattern is not None else None
