"""Personas with their full version history as JSON or YAML: schema ``anyhour.personas/v1``
(docs/personas.md).

Import is idempotent: a version is recognised by a hash of its settings (the same settings
twice in one file count twice), so importing a file again adds nothing; versions the
deployment lacks are appended after its own, authored by the importing user (or "import").
A persona new to the deployment gets the file's active version activated; an existing one
keeps its active version unless ``activate`` is asked for.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.utils import timezone

from accounts.types import RequestUser

from . import services as personas
from .models import Persona, PersonaVersion

SCHEMA = "anyhour.personas/v1"
FORMATS = ("json", "yaml")


class PersonaFileError(ValueError):
    """A file that does not follow the schema; the message says where."""


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)  # slugs of new personas
    added: dict[str, list[int]] = field(default_factory=dict)  # slug -> new local version numbers
    activated: dict[str, int] = field(default_factory=dict)  # slug -> activated local number

    @property
    def changed(self) -> bool:
        return bool(self.created or any(self.added.values()) or self.activated)


# --- export ---------------------------------------------------------------------------------------
def _version_dict(version: PersonaVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "created_at": version.created_at.isoformat(),
        "author": version.author_label,
        "source": version.source,
        "note": version.note,
        **personas.snapshot(version),
    }


def export_data(slugs: list[str] | None = None) -> dict[str, Any]:
    """Every persona (or those with ``slugs``) with all versions, oldest first."""
    queryset = Persona.objects.select_related("active_version").order_by("slug")
    if slugs:
        queryset = queryset.filter(slug__in=slugs)
        missing = set(slugs) - set(queryset.values_list("slug", flat=True))
        if missing:
            raise PersonaFileError(f"No persona with slug {', '.join(sorted(missing))}")
    items = []
    for persona in queryset:
        items.append({
            "slug": persona.slug,
            "name": persona.name,
            "is_default": persona.is_default,
            "active_version": persona.active_version.number if persona.active_version else None,
            "versions": [_version_dict(v) for v in persona.versions.order_by("number")],
        })
    return {"schema": SCHEMA, "exported_at": timezone.now().isoformat(), "personas": items}


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Prompts as readable literal blocks (``|``), not folded quoted strings.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dumps(data: dict[str, Any], fmt: str = "json") -> str:
    if fmt == "yaml":
        return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    raise ValueError(f"Unknown format {fmt!r}; use json or yaml")


def loads(text: str | bytes) -> dict[str, Any]:
    """Parse JSON or YAML (YAML is a superset of JSON; safe_load builds plain data only)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PersonaFileError("The file is not UTF-8 text") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PersonaFileError(f"Not valid JSON or YAML: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise PersonaFileError(f"Not a persona file: the top level needs \"schema\": \"{SCHEMA}\"")
    if not isinstance(data.get("personas"), list):
        raise PersonaFileError("\"personas\" must be a list")
    return data


# --- import ---------------------------------------------------------------------------------------
def _checked(item: Any, index: int) -> tuple[str, str, list[tuple[int, dict[str, Any], str]]]:
    where = f"personas[{index}]"
    if not isinstance(item, dict):
        raise PersonaFileError(f"{where} must be an object")
    slug, name = item.get("slug"), item.get("name")
    try:
        validate_slug(slug or "")
    except ValidationError as exc:
        raise PersonaFileError(f"{where}.slug {slug!r} is not a valid slug") from exc
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise PersonaFileError(f"{where} ({slug}): name must be 1 to 100 characters")
    versions = item.get("versions")
    if not isinstance(versions, list) or not versions:
        raise PersonaFileError(f"{where} ({slug}): versions must be a non-empty list")
    checked: list[tuple[int, dict[str, Any], str]] = []
    for v in sorted(versions, key=lambda v: v.get("number", 0) if isinstance(v, dict) else 0):
        if not isinstance(v, dict) or not isinstance(v.get("number"), int):
            raise PersonaFileError(f"{where} ({slug}): every version needs a whole \"number\"")
        try:
            data = personas.validate({k: v[k] for k in personas.SETTINGS_FIELDS if k in v}, name)
        except ValidationError as exc:
            problems = "; ".join(f"{k}: {' '.join(m)}" for k, m in exc.message_dict.items())
            raise PersonaFileError(f"{slug} version {v['number']}: {problems}") from exc
        checked.append((v["number"], data, str(v.get("note") or "")))
    assert isinstance(slug, str)  # validate_slug accepted it
    return slug, name.strip(), checked


def import_data(data: dict[str, Any], user: RequestUser | None = None, *, activate: bool = False) -> ImportResult:
    """Import a parsed file (``loads``). All or nothing: one bad version refuses the whole file."""
    items = [_checked(item, i) for i, item in enumerate(data["personas"])]
    raw = {item["slug"]: item for item in data["personas"]}
    result = ImportResult()
    label = personas.author_label(user) or "import"
    with transaction.atomic():
        for slug, name, versions in items:
            existing = Persona.objects.select_for_update().filter(slug=slug).first()
            created = existing is None
            if existing is None:
                persona = Persona.objects.create(name=name, slug=slug, **versions[0][1])
                result.created.append(slug)
            else:
                persona = existing
            local: dict[str, list[PersonaVersion]] = defaultdict(list)
            for version in persona.versions.order_by("number"):
                local[personas.fingerprint(personas.snapshot(version))].append(version)
            seen: dict[str, int] = defaultdict(int)
            mapped: dict[int, PersonaVersion] = {}
            added: list[int] = []
            for number, fields, note in versions:
                key = personas.fingerprint(fields)
                seen[key] += 1
                if len(local[key]) >= seen[key]:
                    mapped[number] = local[key][seen[key] - 1]
                    continue
                version = personas.append_version(persona, fields, user, note, PersonaVersion.Source.IMPORT, label)
                local[key].append(version)
                mapped[number] = version
                added.append(version.number)
            result.added[slug] = added
            wanted = raw[slug].get("active_version")
            target = mapped.get(wanted) if isinstance(wanted, int) else None
            target = target or mapped[versions[-1][0]]
            if (created or activate) and persona.active_version_id != target.pk:
                personas.make_active(persona, target)
                result.activated[slug] = target.number
            if created and raw[slug].get("is_default") and not Persona.objects.filter(is_default=True).exists():
                persona.is_default = True
                persona.save(update_fields=["is_default"])
            if created or added or slug in result.activated:
                personas.audit_change(user, "persona.imported", persona, created=created, versions=added,
                                activated=result.activated.get(slug))
    return result
