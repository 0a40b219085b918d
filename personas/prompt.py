"""System-prompt templates: a fixed set of ``{variables}``, checked at save and filled per turn.

Why our own small parser instead of ``str.format``: ``format`` would also accept ``{0}``,
``{x.attr}``, ``{x[0]}`` and ``{x!r:>10}`` (attribute access on whatever we pass in) and its
errors do not say where the problem is. Literal braces are written ``{{`` and ``}}``.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from engine.language import LANGUAGES, detect_language
from engine.tokens import estimate_tokens

# The documented variables (docs/personas.md). Adding one here is enough: validation,
# rendering, the editor's help text and the docs table all read this mapping.
VARIABLES: dict[str, Any] = {
    "company": gettext_lazy("the company name (setting ANYHOUR_COMPANY_NAME)"),
    "persona": gettext_lazy("the persona's name"),
    "date": gettext_lazy("today's date in the deployment's time zone (TIME_ZONE), e.g. 2026-11-25"),
    "weekday": gettext_lazy("today's weekday in English, e.g. Wednesday"),
    "time": gettext_lazy("the current time (HH:MM) in the deployment's time zone"),
    "language": gettext_lazy("the reply language: the customer's (detected from their message) or the fixed one"),
    "agent_hours": gettext_lazy("when human agents are available (setting ANYHOUR_AGENT_HOURS)"),
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class TemplateError(ValueError):
    """A prompt template that cannot be used; ``message`` names the problem and where it is."""

    def __init__(self, message: str, variable: str = ""):
        super().__init__(message)
        self.message = message
        self.variable = variable


@dataclass(frozen=True)
class _Part:
    literal: str = ""
    variable: str = ""


def _where(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return _("line %(line)d, column %(column)d") % {"line": line, "column": column}


@functools.lru_cache(maxsize=128)
def parse(text: str) -> tuple[_Part, ...]:
    """Split a template into literal text and variable names; ``TemplateError`` if malformed.
    Cached: every turn renders its persona's (rarely changing) prompt."""
    parts: list[_Part] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            brace = text.find("{", i + 1)
            if end < 0 or (0 <= brace < end):
                raise TemplateError(
                    _("Unclosed “{” at %(where)s. Write {{ for a literal brace.") % {"where": _where(text, i)}
                )
            name = text[i + 1:end].strip()
            if not _NAME.match(name):
                raise TemplateError(
                    _("“{%(name)s}” at %(where)s is not a variable. Variables look like {company}; "
                      "write {{ and }} for literal braces.") % {"name": text[i + 1:end], "where": _where(text, i)},
                    variable=text[i + 1:end],
                )
            if name not in VARIABLES:
                raise TemplateError(
                    _("Unknown variable {%(name)s} at %(where)s. Known variables: %(known)s.")
                    % {"name": name, "where": _where(text, i), "known": ", ".join(f"{{{v}}}" for v in VARIABLES)},
                    variable=name,
                )
            if literal:
                parts.append(_Part(literal="".join(literal)))
                literal = []
            parts.append(_Part(variable=name))
            i = end + 1
            continue
        if char == "}":
            if text.startswith("}}", i):
                literal.append("}")
                i += 2
                continue
            raise TemplateError(
                _("Unmatched “}” at %(where)s. Write }} for a literal brace.") % {"where": _where(text, i)}
            )
        literal.append(char)
        i += 1
    if literal:
        parts.append(_Part(literal="".join(literal)))
    return tuple(parts)


def variables_used(text: str) -> list[str]:
    return [p.variable for p in parse(text) if p.variable]


def render(text: str, values: dict[str, str]) -> str:
    return "".join(p.literal if not p.variable else values.get(p.variable, "") for p in parse(text))


class PromptSettings(Protocol):
    """What a system prompt is rendered from: a persona version, a persona, or the unsaved
    fields the editor checks against the budget."""

    system_prompt: str
    language_policy: str
    fixed_language: str


def language_name(code: str) -> str:
    return LANGUAGES.get(code, code)


def reply_language(settings_source: PromptSettings, customer_text: str = "") -> str:
    """The language (English name) the answer should be in, following the persona's policy."""
    if settings_source.language_policy == "fixed" and settings_source.fixed_language:
        return language_name(settings_source.fixed_language)
    detected = detect_language(customer_text or "")
    return language_name(detected) if detected else "the customer's language"


def values_for(settings_source: PromptSettings, persona_name: str, customer_text: str = "",
               now: dt.datetime | None = None) -> dict[str, str]:
    local = timezone.localtime(now or timezone.now())
    return {
        "company": settings.ANYHOUR_COMPANY_NAME,
        "persona": persona_name,
        "date": local.date().isoformat(),
        "weekday": local.strftime("%A"),
        "time": local.strftime("%H:%M"),
        "language": reply_language(settings_source, customer_text),
        "agent_hours": settings.ANYHOUR_AGENT_HOURS,
    }


def language_instruction(settings_source: PromptSettings, customer_text: str = "") -> str:
    """The line the language policy adds after the admin's prompt (docs/personas.md)."""
    language = reply_language(settings_source, customer_text)
    if settings_source.language_policy == "fixed" and settings_source.fixed_language:
        return f"Always reply in {language}, whatever language the customer writes in."
    if language == "the customer's language":
        return "Reply in the language the customer writes in."
    return f"Reply in the language the customer writes in (this message: {language})."


def system_prompt(settings_source: PromptSettings, persona_name: str, customer_text: str = "",
                  now: dt.datetime | None = None) -> str:
    """The system message for one turn: the template filled in, then the language policy line."""
    body = render(settings_source.system_prompt, values_for(settings_source, persona_name, customer_text, now))
    return f"{body.rstrip()}\n\n{language_instruction(settings_source, customer_text)}"


def longest_system_prompt_tokens(settings_source: PromptSettings, persona_name: str) -> int:
    """The most tokens the system message can take (the longest language name filled in):
    what the budget check at save time must assume."""
    worst = 0
    for sample in ("", "hello", "你好", "こんにちは", "안녕하세요"):
        worst = max(worst, estimate_tokens(system_prompt(settings_source, persona_name, sample)) + 4)
    return worst
