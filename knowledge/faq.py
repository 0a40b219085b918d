"""The FAQ text format: how question/answer pairs are typed in the editor and shown back.

One block per pair, blocks separated by a blank line; a block's first line is the question, the
rest the answer. "Q:"/"A:" (and 问：/答：) prefixes are allowed and dropped. A block without an
answer line is not a pair and is left out.

``format_faq`` writes pairs in that format: the source editor's text, and the text an FAQ source
is ingested as (``ingestion.extract``). Pure text in, text out, so forms, services and tests share
one definition.
"""
from __future__ import annotations

from collections.abc import Iterable


def parse_faq(text: str) -> list[tuple[str, str]]:
    """The (question, answer) pairs of ``text``, in order."""
    pairs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.strip().split("\n") if line.strip()]
        if len(lines) < 2:
            continue
        question = lines[0].removeprefix("Q:").removeprefix("问：").strip()
        answer = "\n".join(lines[1:]).strip().removeprefix("A:").removeprefix("答：").strip()
        if question and answer:
            pairs.append((question, answer))
    return pairs


def format_faq(pairs: Iterable[tuple[str, str]]) -> str:
    """``pairs`` as editor text: question line, answer below, a blank line between pairs."""
    return "\n\n".join(f"{question}\n{answer}" for question, answer in pairs)
