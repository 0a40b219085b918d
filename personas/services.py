"""Persona versions: validate, save (a new draft version), activate, roll back, diff.

Every change is a new immutable ``PersonaVersion``; the persona points at its one active version
and carries a copy of its values (what the chat page and older code read). Turns use the
version that was active when they began (``selectors.turn_version``), and record it on the
answer. Every change is written to the audit log. See docs/personas.md.
"""
from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from accounts.services import audit
from accounts.types import RequestUser, User
from engine.language import LANGUAGES

from . import prompt as persona_prompt
from .defaults import DEFAULT_PERSONA
from .models import LanguagePolicy, Persona, PersonaVersion

# The snapshot: what a version holds and what is copied to the persona when it is activated.
SETTINGS_FIELDS = (
    "description", "system_prompt", "greeting", "unavailable_text", "model", "temperature", "top_p",
    "max_tokens", "presence_penalty", "frequency_penalty", "stop", "language_policy", "fixed_language",
)
MAX_STOP_SEQUENCES = 4  # what OpenAI-compatible servers accept
MAX_STOP_LENGTH = 100


def snapshot(source: Persona | PersonaVersion) -> dict[str, Any]:
    return {name: getattr(source, name) for name in SETTINGS_FIELDS}


def fingerprint(fields: dict[str, Any]) -> str:
    """A content hash of a version's settings: how import recognises versions it already has."""
    canonical = json.dumps({name: fields.get(name) for name in SETTINGS_FIELDS}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def author_label(user: RequestUser | None) -> str:
    if user is None or not isinstance(user, User):
        return ""
    return user.email or user.get_username()


# --- validation -----------------------------------------------------------------------------------
def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """Defaults for missing fields, and types as stored (stop sequences as a list)."""
    defaults = {f.name: f.get_default() for f in PersonaVersion._meta.concrete_fields if f.name in SETTINGS_FIELDS}
    data = {**defaults, **{k: v for k, v in fields.items() if k in SETTINGS_FIELDS}}
    stop = data.get("stop") or []
    if isinstance(stop, str):
        stop = [line for line in stop.splitlines() if line]
    data["stop"] = list(stop)
    for name in ("description", "system_prompt", "greeting", "unavailable_text", "model", "fixed_language"):
        data[name] = (data.get(name) or "").replace("\r\n", "\n")
    data["model"] = data["model"].strip()
    if data["language_policy"] != LanguagePolicy.FIXED:
        data["fixed_language"] = ""
    return data


def validate(fields: dict[str, Any], persona_name: str) -> dict[str, Any]:
    """The normalised fields, or ``ValidationError`` with a message per field that says what to fix."""
    data = normalise(fields)
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not data["system_prompt"].strip():
        refuse("system_prompt", _("The system prompt cannot be empty."))
    for name in ("system_prompt",):
        try:
            persona_prompt.parse(data[name])
        except persona_prompt.TemplateError as error:
            refuse(name, error.message)

    def in_range(name: str, low: float, high: float, label: str) -> None:
        value = data[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            message = _("%(label)s must be between %(low)s and %(high)s.")
            refuse(name, message % {"label": label, "low": low, "high": high})

    in_range("temperature", 0.0, 2.0, _("Temperature"))
    in_range("top_p", 0.01, 1.0, _("Top p"))
    in_range("presence_penalty", -2.0, 2.0, _("Presence penalty"))
    in_range("frequency_penalty", -2.0, 2.0, _("Frequency penalty"))
    max_tokens = data["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        refuse("max_tokens", _("Max tokens must be a whole number of at least 1."))
    stop = data["stop"]
    if len(stop) > MAX_STOP_SEQUENCES:
        refuse("stop", _("At most %(n)d stop sequences.") % {"n": MAX_STOP_SEQUENCES})
    if any(not isinstance(s, str) or not s or len(s) > MAX_STOP_LENGTH for s in stop):
        refuse("stop", _("Each stop sequence needs 1 to %(n)d characters.") % {"n": MAX_STOP_LENGTH})
    if data["language_policy"] not in LanguagePolicy.values:
        refuse("language_policy", _("Choose a language policy."))
    elif data["language_policy"] == LanguagePolicy.FIXED and data["fixed_language"] not in LANGUAGES:
        refuse("fixed_language", _("Choose the language to reply in: %(codes)s.") % {"codes": ", ".join(LANGUAGES)})
    if len(data["model"]) > 200:
        refuse("model", _("The model name is too long."))

    if not errors:
        check_budget(data, persona_name)
    if errors:
        raise ValidationError(errors)
    return data


def check_budget(data: dict[str, Any], persona_name: str) -> None:
    """The system prompt plus ``max_tokens`` plus the room kept for the conversation must fit
    CHAT_CONTEXT_TOKENS, or no customer message would fit beside them."""

    source = SimpleNamespace(**data)
    prompt_tokens = persona_prompt.longest_system_prompt_tokens(source, persona_name)
    reserve = settings.PERSONA_HISTORY_RESERVE_TOKENS
    budget = settings.CHAT_CONTEXT_TOKENS
    total = prompt_tokens + data["max_tokens"] + reserve
    if total > budget:
        raise ValidationError({
            "max_tokens": [
                _(
                    "Too long for the context budget: the system prompt (about %(prompt)d tokens) plus max "
                    "tokens (%(max_tokens)d) plus %(reserve)d tokens kept for the conversation make %(total)d, "
                    "more than the %(budget)d tokens of CHAT_CONTEXT_TOKENS. Shorten the prompt or lower max tokens."
                )
                % {"prompt": prompt_tokens, "max_tokens": data["max_tokens"], "reserve": reserve,
                   "total": total, "budget": budget}
            ]
        })


# --- writes -----------------------------------------------------------------------------------------
def audit_change(actor: RequestUser | None, action: str, persona: Persona, **details: Any) -> None:
    """Write a persona change to the audit log (target ``persona:<slug>``)."""
    audit(actor, action, f"persona:{persona.slug}", **details)


def append_version(persona: Persona, data: dict[str, Any], author: RequestUser | None, note: str, source: str,
                   label: str | None = None) -> PersonaVersion:
    """A new version numbered after the persona's last; ``data`` must be validated. Callers hold
    the persona's row lock (or just created it) so two saves cannot take the same number."""
    number = (persona.versions.aggregate(m=Max("number"))["m"] or 0) + 1
    return PersonaVersion.objects.create(
        persona=persona, number=number, author=author if isinstance(author, User) else None,
        author_label=label if label is not None else author_label(author), note=note[:500], source=source, **data,
    )


def make_active(persona: Persona, version: PersonaVersion) -> None:
    """Point the persona at ``version`` and copy its values onto the persona row (no audit)."""
    for name in SETTINGS_FIELDS:
        setattr(persona, name, getattr(version, name))
    persona.active_version = version
    persona.save()


def create_persona(name: str, slug: str, fields: dict[str, Any], author: RequestUser | None = None, note: str = "",
                   source: str = PersonaVersion.Source.EDITOR, is_default: bool = False,
                   label: str | None = None) -> Persona:
    """A new persona with version 1, active."""
    data = validate(fields, name)
    with transaction.atomic():
        persona = Persona.objects.create(name=name, slug=slug, is_default=is_default, **data)
        version = append_version(persona, data, author, note, source, label)
        make_active(persona, version)
        if source != PersonaVersion.Source.DEFAULT:  # the install's own demo persona is no one's change
            audit_change(author, "persona.created", persona, version=version.number, note=note, source=source)
    return persona


def save_version(persona: Persona, fields: dict[str, Any], author: RequestUser | None, note: str = "",
                 name: str | None = None) -> PersonaVersion:
    """Save the editor: a new draft version (not active until activated). ``name`` renames the
    persona (the name is the persona's, not a version's)."""
    with transaction.atomic():
        persona = Persona.objects.select_for_update().get(pk=persona.pk)
        if name is not None and name.strip() and name.strip() != persona.name:
            persona.name = name.strip()[:100]
            persona.save(update_fields=["name", "updated_at"])
        data = validate(fields, persona.name)
        version = append_version(persona, data, author, note, PersonaVersion.Source.EDITOR)
        audit_change(author, "persona.version_saved", persona, version=version.number, note=note)
    return version


def activate(version: PersonaVersion, actor: RequestUser | None, note: str = "") -> PersonaVersion:
    """Make ``version`` the persona's active one. Activating an older version than the active
    one is a rollback and is recorded as such. Turns that began earlier keep their version."""
    with transaction.atomic():
        persona = Persona.objects.select_for_update().get(pk=version.persona_id)
        previous = persona.active_version.number if persona.active_version is not None else None
        if previous == version.number:
            return version
        make_active(persona, version)
        action = "persona.rollback" if previous is not None and version.number < previous else "persona.activated"
        audit_change(actor, action, persona, version=version.number, previous=previous, note=note)
    return version


def ensure_versioned(persona: Persona, source: str = PersonaVersion.Source.DEFAULT) -> PersonaVersion:
    """A persona created without the editor (fixtures, the admin's add form) gets version 1."""
    if persona.active_version is not None:
        return persona.active_version
    with transaction.atomic():
        version = persona.versions.order_by("-number").first()
        if version is None:
            version = append_version(persona, normalise(snapshot(persona)), None, "", source, label="system")
        persona.active_version = version
        persona.save(update_fields=["active_version", "updated_at"])
    return version


# --- diffs (a read, beside the writes it explains) ---------------------------------------------------
@dataclass(frozen=True)
class DiffRow:
    """One side-by-side row: ``tag`` is equal/replace/delete/insert; ``left``/``right`` are text
    lines (None where that side has no line). Templates escape them."""

    tag: str
    left: str | None
    right: str | None
    left_number: int | None
    right_number: int | None


@dataclass(frozen=True)
class FieldDiff:
    name: str
    label: str
    changed: bool
    rows: list[DiffRow]
    unified: str


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _side_by_side(a: list[str], b: list[str]) -> list[DiffRow]:
    rows: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            rows.extend(DiffRow("equal", a[i1 + k], b[j1 + k], i1 + k + 1, j1 + k + 1) for k in range(i2 - i1))
            continue
        for k in range(max(i2 - i1, j2 - j1)):
            left = a[i1 + k] if i1 + k < i2 else None
            right = b[j1 + k] if j1 + k < j2 else None
            row_tag = "replace" if left is not None and right is not None else ("delete" if right is None else "insert")
            rows.append(DiffRow(row_tag, left, right, i1 + k + 1 if left is not None else None,
                                j1 + k + 1 if right is not None else None))
    return rows


def diff_versions(old: PersonaVersion, new: PersonaVersion) -> list[FieldDiff]:
    """Per field: side-by-side rows and a unified diff, from ``old`` to ``new``."""
    diffs = []
    for name in SETTINGS_FIELDS:
        a = _as_text(getattr(old, name)).splitlines()
        b = _as_text(getattr(new, name)).splitlines()
        unified = "\n".join(
            difflib.unified_diff(a, b, f"v{old.number} {name}", f"v{new.number} {name}", lineterm="", n=2)
        )
        label = str(getattr(PersonaVersion._meta.get_field(name), "verbose_name", name))
        diffs.append(FieldDiff(name, label, a != b, _side_by_side(a, b), unified))
    return diffs


def ensure_default_persona() -> Persona:
    """Create the demo persona (version 1, active) if no default persona exists (after migrate,
    and after test flushes)."""
    persona = Persona.objects.filter(is_default=True).first()
    if persona is not None:
        ensure_versioned(persona)
        return persona
    persona = Persona.objects.filter(slug=DEFAULT_PERSONA["slug"]).first()
    if persona is None:
        fields = {k: v for k, v in DEFAULT_PERSONA.items() if k not in ("name", "slug")}
        return create_persona(
            DEFAULT_PERSONA["name"], DEFAULT_PERSONA["slug"], fields, note="Built-in default persona",
            source=PersonaVersion.Source.DEFAULT, is_default=True, label="system",
        )
    ensure_versioned(persona)
    persona.is_default = True
    persona.save(update_fields=["is_default"])
    return persona
