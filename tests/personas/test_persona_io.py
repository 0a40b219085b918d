"""Persona import/export (schema anyhour.personas/v1): round trip, idempotence, the command."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from accounts.models import AuditEvent
from personas import importexport as persona_io
from personas import services as personas
from personas.models import Persona, PersonaVersion
from personas.services import ensure_default_persona
from tests.accounts.support import make_user

pytestmark = pytest.mark.django_db

# What differs between an export and the export of its import (docs/personas.md): when and by
# whom, since import records the importing user and time.
VOLATILE = ("exported_at", "created_at", "author", "source")


def stable(data: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    data.pop("exported_at")
    for persona in data["personas"]:
        for version in persona["versions"]:
            for key in VOLATILE:
                version.pop(key, None)
    return data


@pytest.fixture
def history() -> Persona:
    """The default persona with three versions, the second active (after a rollback)."""
    admin = make_user("boss@example.com")
    persona = ensure_default_persona()
    base = personas.snapshot(persona.active_version)
    v2 = personas.save_version(persona, base | {"greeting": "你好！Hello!", "stop": ["<END>"], "temperature": 0.5},
                               admin, note="bilingual greeting")
    v3 = personas.save_version(persona, base | {"system_prompt": base["system_prompt"] + "\nUse {{braces}} literally."},
                               admin, note="braces")
    personas.activate(v3, admin)
    personas.activate(v2, admin)
    personas.create_persona("Returns", "returns", base | {"language_policy": "fixed", "fixed_language": "en"}, admin)
    return persona


def wipe() -> None:
    Persona.objects.update(active_version=None)
    PersonaVersion.objects.all().delete()
    Persona.objects.all().delete()


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_round_trip_into_an_empty_database(history: Persona, fmt: str) -> None:
    first = persona_io.export_data()
    text = persona_io.dumps(first, fmt)
    wipe()
    importer = make_user("ops@example.com")
    result = persona_io.import_data(persona_io.loads(text), importer)
    assert sorted(result.created) == ["lumio-support", "returns"]
    assert result.activated == {"lumio-support": 2, "returns": 1}
    again = persona_io.export_data()
    assert stable(again) == stable(first)
    lumio = Persona.objects.get(slug="lumio-support")
    assert lumio.is_default and lumio.greeting == "你好！Hello!"  # the active copy follows the file
    assert {v.author_label for v in lumio.versions.all()} == {"ops@example.com"}
    assert set(lumio.versions.values_list("source", flat=True)) == {"import"}


def test_importing_twice_creates_nothing_new(history: Persona) -> None:
    text = persona_io.dumps(persona_io.export_data())
    wipe()
    persona_io.import_data(persona_io.loads(text))
    counts = (Persona.objects.count(), PersonaVersion.objects.count(), AuditEvent.objects.count())
    result = persona_io.import_data(persona_io.loads(text))
    assert not result.changed
    assert (Persona.objects.count(), PersonaVersion.objects.count(), AuditEvent.objects.count()) == counts
    assert set(PersonaVersion.objects.values_list("author_label", flat=True)) == {"import"}


def test_new_versions_are_appended_and_activation_is_opt_in(history: Persona) -> None:
    data = persona_io.export_data(["lumio-support"])
    extra = dict(data["personas"][0]["versions"][-1])
    extra.update(number=4, note="from staging", greeting="Hi from staging")
    data["personas"][0]["versions"].append(extra)
    data["personas"][0]["active_version"] = 4
    result = persona_io.import_data(json.loads(json.dumps(data)))
    assert result.added == {"lumio-support": [4]} and result.activated == {}
    history.refresh_from_db()
    assert history.active_version.number == 2  # the deployment's choice stands
    new = history.versions.get(number=4)
    assert new.note == "from staging" and new.author_label == "import" and new.source == "import"
    result = persona_io.import_data(json.loads(json.dumps(data)), activate=True)
    history.refresh_from_db()
    assert result.added == {"lumio-support": []} and history.active_version.number == 4


def test_a_bad_version_refuses_the_whole_file(history: Persona) -> None:
    data = persona_io.export_data()
    data["personas"][1]["versions"][0]["system_prompt"] = "Hi {nobody}"
    before = PersonaVersion.objects.count()
    wipe_free = json.loads(json.dumps(data))
    wipe_free["personas"][0]["versions"].append(dict(wipe_free["personas"][0]["versions"][0], number=9, greeting="new"))
    with pytest.raises(persona_io.PersonaFileError) as info:
        persona_io.import_data(wipe_free)
    assert "returns version 1: system_prompt: Unknown variable {nobody}" in str(info.value)
    assert PersonaVersion.objects.count() == before


@pytest.mark.parametrize(
    "text, message",
    [
        ("not: [valid", "Not valid JSON or YAML"),
        ('{"schema": "anyhour.personas/v2", "personas": []}', "Not a persona file"),
        ('{"schema": "anyhour.personas/v1", "personas": [{"slug": "bad slug", "name": "x", "versions": []}]}',
         "personas[0].slug 'bad slug' is not a valid slug"),
        ('{"schema": "anyhour.personas/v1", "personas": [{"slug": "ok", "name": "x", "versions": []}]}',
         "versions must be a non-empty list"),
    ],
)
def test_malformed_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(persona_io.PersonaFileError) as info:
        persona_io.import_data(persona_io.loads(text))
    assert message in str(info.value)


def test_yaml_is_parsed_safely() -> None:
    with pytest.raises(persona_io.PersonaFileError):
        persona_io.loads("!!python/object/apply:os.system ['echo hacked']")


def test_management_command_round_trip(history: Persona, tmp_path: Path) -> None:
    out = tmp_path / "personas.yaml"
    call_command("personas", "export", "--format", "yaml", "--output", str(out))
    assert out.read_text(encoding="utf-8").startswith("schema: anyhour.personas/v1\n")
    stdout = io.StringIO()
    call_command("personas", "export", "returns", stdout=stdout)
    assert [p["slug"] for p in json.loads(stdout.getvalue())["personas"]] == ["returns"]
    wipe()
    make_user("ops@example.com")
    stdout = io.StringIO()
    call_command("personas", "import", str(out), "--user", "ops@example.com", stdout=stdout)
    assert "created persona lumio-support" in stdout.getvalue() and "lumio-support: version 2 is active" in stdout.getvalue()
    stdout = io.StringIO()
    call_command("personas", "import", str(out), stdout=stdout)
    assert stdout.getvalue().startswith("Nothing new")
    assert AuditEvent.objects.filter(action="persona.imported").count() == 2  # one per persona, first import only
    with pytest.raises(CommandError, match="No persona with slug nope"):
        call_command("personas", "export", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="No user with email"):
        call_command("personas", "import", str(out), "--user", "ghost@example.com")
