"""The audit log page (/accounts/profile/audit/): admins only, newest first, filter, pages."""
from __future__ import annotations

from typing import Any

import pytest

from accounts import roles
from accounts.models import AuditEvent
from accounts.services import audit
from personas import services as personas
from personas.services import ensure_default_persona
from tests.accounts.support import FAST_HASHERS, Browser, make_user

pytestmark = pytest.mark.django_db
URL = "/accounts/profile/audit/"


@pytest.fixture
def admin(settings: Any) -> Any:
    settings.PASSWORD_HASHERS = FAST_HASHERS
    return make_user("boss@example.com", role=roles.ADMIN, mfa=True)


def test_persona_changes_are_listed_with_who_what_and_versions(admin: Any) -> None:
    persona = ensure_default_persona()
    draft = personas.save_version(persona, personas.snapshot(persona.active_version) | {"greeting": "Hi"}, admin,
                                  note="shorter greeting")
    personas.activate(draft, admin)
    personas.activate(persona.versions.get(number=1), admin)
    page = Browser.logged_in(admin).client.get(URL)
    assert page.status_code == 200
    rows = [(e.action, e.target, e.details) for e in page.context["page"]]
    assert rows[:3] == [
        ("persona.rollback", "persona:lumio-support", {"version": 1, "previous": 2, "note": ""}),
        ("persona.activated", "persona:lumio-support", {"version": 2, "previous": 1, "note": ""}),
        ("persona.version_saved", "persona:lumio-support", {"version": 2, "note": "shorter greeting"}),
    ]
    html = page.content.decode()
    assert "boss@example.com" in html and "note=shorter greeting" in html


def test_filter_by_action_and_pages(admin: Any) -> None:
    for i in range(60):
        audit(admin, "persona.version_saved", "persona:x", version=i)
    audit(None, "role.granted", "user:1", role="agent")
    client = Browser.logged_in(admin).client
    first = client.get(URL)
    assert len(first.context["page"]) == 50 and first.context["page"].paginator.count == 62  # + admin's own role grant
    assert "role.granted" in first.context["actions"] and "persona.version_saved" in first.context["actions"]
    filtered = client.get(URL, {"action": "role.granted"})
    assert [e.action for e in filtered.context["page"]] == ["role.granted", "role.granted"]
    second = client.get(URL, {"action": "persona.version_saved", "page": 2})
    assert [e.details["version"] for e in second.context["page"]] == list(range(9, -1, -1))
    assert 'href="?action=persona.version_saved&amp;page=1"' in second.content.decode()
    assert client.get(URL, {"page": "999"}).context["page"].number == 2  # past the end: the last page


@pytest.mark.parametrize(
    "who, role, mfa",
    [("agent@example.com", roles.AGENT, True), ("c@example.com", None, False), ("admin2@example.com", roles.ADMIN, False)],
)
def test_others_get_404(admin: Any, who: str, role: str | None, mfa: bool) -> None:
    audit(admin, "persona.activated", "persona:x")
    assert Browser.logged_in(make_user(who, role=role, mfa=mfa)).client.get(URL).status_code == 404
    assert Browser.guest().client.get(URL).status_code == 404
    assert AuditEvent.objects.count() >= 1
