"""The persona editor pages: every door × every principal, and what an admin sees and does."""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from chat import services
from chat.models import Conversation
from personas import importexport as persona_io
from personas import services as personas
from personas.models import Persona, PersonaVersion
from tests.chat.test_authorization import MFA, PRINCIPALS, World, outcome

pytestmark = pytest.mark.django_db

READ, EDIT, HIDDEN, DENIED = "reads", "edits", 404, 403


@pytest.fixture
def world() -> World:
    from tests.accounts.support import Browser

    return World(Browser.logged_in)


def expected_for(principal: str, *, agent: Any, admin: Any) -> Any:
    if principal in ("agent_no_mfa", "admin_no_mfa"):
        return MFA  # staff without MFA are sent to set it up, as everywhere
    if principal == "agent_mfa":
        return agent
    if principal == "admin_mfa":
        return admin
    return HIDDEN  # guests and customers: the pages do not exist for them


# door -> (method, path builder, what an agent gets, what an admin gets)
def _draft(world: World) -> PersonaVersion:
    return personas.save_version(world.persona, personas.snapshot(world.persona.active_version) | {"greeting": "draft"}, None)


DOORS = {
    "list": ("get", lambda w: "/personas/", 200, 200),
    "editor": ("get", lambda w: f"/personas/{w.persona.slug}/", READ, EDIT),
    "new": ("get", lambda w: "/personas/new/", DENIED, 200),
    "save": ("post", lambda w: f"/personas/{w.persona.slug}/", DENIED, 302),
    "activate": ("post", lambda w: f"/personas/{w.persona.slug}/versions/{_draft(w).number}/activate/", DENIED, 302),
    "diff": ("get", lambda w: f"/personas/{w.persona.slug}/diff/?a=1&b={_draft(w).number}", DENIED, 200),
    "preview": ("post", lambda w: f"/personas/{w.persona.slug}/versions/1/preview/", DENIED, 201),
    "export": ("get", lambda w: "/personas/export.json", DENIED, 200),
    "import": ("post", lambda w: "/personas/import/", DENIED, 302),
    "audit": ("get", lambda w: "/accounts/profile/audit/", HIDDEN, 200),
}


def _form_data(world: World) -> dict[str, Any]:
    data = personas.snapshot(world.persona.active_version)
    data["stop"] = ""
    data["name"] = world.persona.name
    data["note"] = "from the matrix"
    return data


@pytest.mark.parametrize(
    "principal, door",
    [pytest.param(p, d, id=f"{p}|{d}") for d in DOORS for p in PRINCIPALS],
)
def test_persona_doors(world: World, principal: str, door: str) -> None:
    method, path_for, agent, admin = DOORS[door]
    expected = expected_for(principal, agent=agent, admin=admin)
    if door == "audit" and expected == MFA:
        expected = HIDDEN  # /accounts/ pages stay reachable without MFA; the log is for admins in force
    path = path_for(world)
    client = world.browser(principal).client
    versions_before = PersonaVersion.objects.count()
    active_before = Persona.objects.get(pk=world.persona.pk).active_version_id
    if method == "get":
        response = client.get(path)
    elif door == "save":
        response = client.post(path, _form_data(world))
    elif door == "import":
        response = client.post(path, {"file": SimpleUploadedFile("p.json", persona_io.dumps(persona_io.export_data()).encode())})
    else:
        response = client.post(path)
    if expected == READ:
        assert response.status_code == 200
        assert "personas/read.html" in [t.name for t in response.templates]
        assert "form" not in response.context
        assert world.persona.active_version.system_prompt[:40] in response.content.decode()
    elif expected == EDIT:
        assert response.status_code == 200 and "form" in response.context
    elif expected == 302:  # an admin's change went through
        assert response.status_code == 302
        if door == "save":
            assert PersonaVersion.objects.count() == versions_before + 1
        if door == "activate":
            assert Persona.objects.get(pk=world.persona.pk).active_version_id != active_before
    else:
        assert outcome(response) == expected
    if expected in (HIDDEN, DENIED, MFA):
        # Nothing changed behind a refused door.
        assert Persona.objects.get(pk=world.persona.pk).active_version_id == active_before
        assert PersonaVersion.objects.count() <= versions_before + (1 if door in ("activate", "diff") else 0)
        assert not Conversation.objects.filter(is_preview=True).exists()


@pytest.fixture
def admin_client(world: World) -> Any:
    return world.browser("admin_mfa").client


def test_admin_saves_a_new_version_and_sees_it_listed(world: World, admin_client: Any) -> None:
    data = _form_data(world) | {"greeting": "Welcome to Lumio!", "stop": "###\nEND", "note": "warmer greeting"}
    response = admin_client.post(f"/personas/{world.persona.slug}/", data)
    assert outcome(response)[0] == "redirect"
    version = world.persona.versions.get(number=2)
    assert version.greeting == "Welcome to Lumio!" and version.stop == ["###", "END"] and version.note == "warmer greeting"
    assert version.author == world.browser("admin_mfa").user
    page = admin_client.get(f"/personas/{world.persona.slug}/").content.decode()
    assert "warmer greeting" in page and 'data-badge="draft"' in page and 'data-badge="active"' in page
    event = AuditEvent.objects.get(action="persona.version_saved")
    assert event.details == {"version": 2, "note": "warmer greeting"} and event.actor == version.author


def test_editor_shows_what_is_wrong_with_a_prompt(world: World, admin_client: Any) -> None:
    data = _form_data(world) | {"system_prompt": "Hello {customer}, we are {company"}
    response = admin_client.post(f"/personas/{world.persona.slug}/", data)
    assert response.status_code == 200
    errors = response.context["form"].errors["system_prompt"]
    assert errors == ["Unknown variable {customer} at line 1, column 7. Known variables: {company}, {persona}, {date}, "
                      "{weekday}, {time}, {language}, {agent_hours}."]
    assert "Unknown variable {customer}" in response.content.decode()
    assert world.persona.versions.count() == 1


def test_editor_shows_the_budget_numbers(world: World, admin_client: Any, settings: Any) -> None:
    settings.CHAT_CONTEXT_TOKENS = 3000
    response = admin_client.post(f"/personas/{world.persona.slug}/", _form_data(world) | {"max_tokens": 2500})
    message = response.context["form"].errors["max_tokens"][0]
    assert "max tokens (2500)" in message and "3000 tokens of CHAT_CONTEXT_TOKENS" in message


def test_activate_and_roll_back_from_the_editor(world: World, admin_client: Any) -> None:
    draft = _draft(world)
    admin_client.post(f"/personas/{world.persona.slug}/versions/{draft.number}/activate/")
    world.persona.refresh_from_db()
    assert world.persona.active_version == draft and world.persona.greeting == "draft"
    admin_client.post(f"/personas/{world.persona.slug}/versions/1/activate/")
    world.persona.refresh_from_db()
    assert world.persona.active_version.number == 1
    assert list(AuditEvent.objects.filter(target=f"persona:{world.persona.slug}").order_by("pk").values_list("action", flat=True)) == [
        "persona.version_saved", "persona.activated", "persona.rollback"]


def test_activation_needs_a_post_with_csrf(world: World) -> None:
    from django.test import Client

    draft = _draft(world)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.browser("admin_mfa").user)
    path = f"/personas/{world.persona.slug}/versions/{draft.number}/activate/"
    assert client.get(path).status_code == 405
    assert client.post(path).status_code == 403  # no CSRF token
    world.persona.refresh_from_db()
    assert world.persona.active_version.number == 1


def test_diff_page_escapes_prompt_text(world: World, admin_client: Any) -> None:
    fields = personas.snapshot(world.persona.active_version)
    v2 = personas.save_version(world.persona, fields | {"system_prompt": fields["system_prompt"] + "\n<img src=x onerror=alert(1)>"}, None)
    for view in ("", "&view=unified"):
        page = admin_client.get(f"/personas/{world.persona.slug}/diff/?a=1&b={v2.number}{view}").content.decode()
        assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
        assert 'data-field="system_prompt"' in page and 'data-field="greeting"' not in page


def test_unknown_persona_and_version_are_404(world: World, admin_client: Any) -> None:
    assert admin_client.get("/personas/nope/").status_code == 404
    assert admin_client.post(f"/personas/{world.persona.slug}/versions/99/activate/").status_code == 404
    assert admin_client.post(f"/personas/{world.persona.slug}/versions/99/preview/").status_code == 404


def test_preview_is_pinned_and_hidden_from_the_admins_own_history(world: World, admin_client: Any) -> None:
    draft = _draft(world)
    data = admin_client.post(f"/personas/{world.persona.slug}/versions/{draft.number}/preview/").json()
    conversation = Conversation.objects.get(public_id=data["id"])
    assert conversation.is_preview and conversation.persona_version == draft and data["ws"] == f"/ws/chat/{data['id']}/"
    assert admin_client.get("/history/").json()["conversations"] == []
    assert data["id"] not in admin_client.get("/").content.decode()
    # Agents read every customer transcript, but not admins' previews.
    assert world.browser("agent_mfa").client.get(f"/c/{data['id']}/").status_code == 404


def test_export_and_import_in_the_ui(world: World, admin_client: Any) -> None:
    _draft(world)
    response = admin_client.get(f"/personas/export.yaml?slug={world.persona.slug}")
    assert response["Content-Disposition"].startswith(f'attachment; filename="anyhour-{world.persona.slug}-')
    data = persona_io.loads(response.content)
    assert [v["number"] for v in data["personas"][0]["versions"]] == [1, 2]
    upload = SimpleUploadedFile("p.yaml", response.content)
    page = admin_client.post("/personas/import/", {"file": upload}, follow=True).content.decode()
    assert "Nothing new" in page
    bad = SimpleUploadedFile("p.json", json.dumps({"schema": "other"}).encode())
    page = admin_client.post("/personas/import/", {"file": bad}, follow=True).content.decode()
    assert "Nothing was imported: Not a persona file" in page
    assert AuditEvent.objects.filter(action="persona.exported").count() == 1


def test_new_persona_from_the_ui(world: World, admin_client: Any) -> None:
    data = _form_data(world) | {"name": "Returns desk", "slug": "returns", "note": "new desk"}
    response = admin_client.post("/personas/new/", data)
    assert outcome(response) == ("redirect", "/personas/returns/")
    persona = Persona.objects.get(slug="returns")
    assert persona.active_version.number == 1 and persona.active_version.note == "new desk"
    assert admin_client.post("/personas/new/", data | {"slug": "new"}).context["form"].errors["slug"]


def test_account_page_links_staff_to_the_personas(world: World) -> None:
    admin_page = world.browser("admin_mfa").client.get("/accounts/profile/").content.decode()
    agent_page = world.browser("agent_mfa").client.get("/accounts/profile/").content.decode()
    customer_page = world.browser("customer_c1").client.get("/accounts/profile/").content.decode()
    assert 'id="personas-link"' in admin_page and 'id="audit-link"' in admin_page
    assert 'id="personas-link"' in agent_page and 'id="audit-link"' not in agent_page
    assert 'id="personas-link"' not in customer_page


def test_previews_are_not_in_the_bulk_transcript_export(world: World, admin_client: Any) -> None:
    draft = _draft(world)
    data = admin_client.post(f"/personas/{world.persona.slug}/versions/{draft.number}/preview/").json()
    preview = Conversation.objects.get(public_id=data["id"])
    services.begin_turn(preview, "PREVIEW-ONLY question", "p1", world.persona, "w", draft)
    agent = world.browser("agent_mfa").client
    body = b"".join(agent.get("/transcripts/export.jsonl").streaming_content).decode()
    rows = [json.loads(line) for line in body.splitlines()]
    assert rows and all("PREVIEW-ONLY" not in row["content"] for row in rows)
    assert {row["conversation_id"] for row in rows} == {c.public_id for c in world.conversations.values()}
    assert admin_client.get("/accounts/profile/").context["conversation_count"] == 0
