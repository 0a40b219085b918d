"""Escalation keyword/pattern matching (Django-free, pure): which words of a text fire a rule.

A rule is patterns (a word or phrase, or ``re:REGEX``), optional exceptions and an optional
language. A match does not count when:

- it lies inside an occurrence of one of the rule's exceptions (product names and idioms:
  烟雾报警器 contains 报警, "smoke alarm" is not a fire), or
- a negation governs it: Chinese 不会/不想/不打算/没有/别/不… right before it (不会起诉, 没报警),
  English not/no/never/won't/don't within three words before it ("not a lawyer",
  "won't file a chargeback"), or
- it is retracted, in the same clause: 本来/原本/本想/本打算… shortly before it (本来想打12315),
  "was about to"/"was going to"/"had planned to" within four words before it. "差点"/"almost"
  are deliberately not retractions: 差点起火 is a fire risk.

Latin-script patterns match whole words, case-insensitively; CJK patterns match anywhere.
``compile_rule`` raises ``ValueError`` with the offending line for a bad regular expression, so
the admin form can say which line is wrong.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_ZH_NEGATION = re.compile(r"(不会|不想|不打算|没打算|不用|无需|不必|没必要|不需要|没有|没|别|不要|不)[去再要就会]?$")
_EN_NEGATION = re.compile(
    r"\b(not|no|never|won't|wont|will not|don't|dont|do not|didn't|wouldn't|without|isn't|aren't|am not)"
    r"(\s+[\w'-]+){0,3}\s*$",
    re.IGNORECASE,
)
_ZH_RETRACTION = re.compile(r"(本来|原本|本想|本打算|原打算|原想)[^，。！？,.!?;；]{0,8}$")
_EN_RETRACTION = re.compile(
    r"\b(was about to|was going to|were going to|had planned to|had thought about|thought about)"
    r"(\s+[\w'-]+){0,4}\s*$",
    re.IGNORECASE,
)
_LATIN = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class CompiledRule:
    name: str
    language: str
    patterns: tuple[re.Pattern[str], ...]
    exceptions: tuple[re.Pattern[str], ...]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _compile_one(line: str) -> re.Pattern[str]:
    if line.startswith("re:"):
        try:
            return re.compile(line[3:], re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{line!r}: {exc}") from exc
    escaped = re.escape(line)
    # Whole words for Latin letters and digits, even right beside CJK text ("去12315投诉").
    if _LATIN.match(line[0]):
        escaped = r"(?<![A-Za-z0-9])" + escaped
    if _LATIN.match(line[-1]):
        escaped = escaped + r"(?![A-Za-z0-9])"
    return re.compile(escaped, re.IGNORECASE)


def compile_rule(*, name: str, patterns: str, exceptions: str = "", language: str = "") -> CompiledRule:
    return CompiledRule(
        name=name,
        language=language,
        patterns=tuple(_compile_one(line) for line in _lines(patterns)),
        exceptions=tuple(_compile_one(line) for line in _lines(exceptions)),
    )


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 40) : start]
    if _ZH_NEGATION.search(before[-6:]) or _ZH_RETRACTION.search(before[-14:]):
        return True
    return bool(_EN_NEGATION.search(before) or _EN_RETRACTION.search(before))


def find_matches(rule: CompiledRule, text: str, language: str = "") -> list[str]:
    """The matched words (in text order, each once) that fire ``rule``; [] when none does."""
    if rule.language and language and rule.language != language:
        return []
    covered: list[tuple[int, int]] = [
        (m.start(), m.end()) for pattern in rule.exceptions for m in pattern.finditer(text)
    ]
    found: list[tuple[int, str]] = []
    for pattern in rule.patterns:
        for m in pattern.finditer(text):
            s, e = m.start(), m.end()
            if s == e or any(cs <= s and e <= ce for cs, ce in covered) or _negated(text, s):
                continue
            found.append((s, m.group(0)))
    seen: set[str] = set()
    out: list[str] = []
    for _, word in sorted(found):
        if word.lower() not in seen:
            seen.add(word.lower())
            out.append(word)
    return out


def first_match(rules: Iterable[CompiledRule], text: str, language: str = "") -> tuple[CompiledRule, list[str]] | None:
    for rule in rules:
        matched = find_matches(rule, text, language)
        if matched:
            return rule, matched
    return None
