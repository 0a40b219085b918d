"""Admins edit escalation rules in the Django admin, tested against sample texts before saving;
prompt versions are added, never edited; agents and customers cannot reach any of it."""
from __future__ import annotations

import pytest

from accounts import roles
from analysis.models import EscalationRule, PromptVersion
from tests.accounts.support import Browser, make_user

pytestmark = pytest.mark.django_db

ADD = "/admin/analysis/escalationrule/add/"


def _form(**fields: str) -> dict[str, str]:
    return {"name": "legal-test", "kind": "keywords", "language": "", "patterns": "起诉\nlawyer", "exceptions": "",
            "min_confidence": "0.8", "level": "critical", "active": "on", "samples": "", "expect_no_match": "", **fields}


@pytest.fixture
def admin() -> Browser:
    return Browser.logged_in(make_user("admin@example.com", role=roles.ADMIN, mfa=True))


def test_a_rule_that_fires_on_a_must_not_match_text_is_not_saved(admin: Browser) -> None:
    response = admin.client.post(ADD, _form(expect_no_match="我不会起诉的\n我要起诉烟雾报警器厂家"))
    assert response.status_code == 200 and not EscalationRule.objects.filter(name="legal-test").exists()
    assert "我要起诉烟雾报警器厂家 → 起诉" in response.content.decode()


def test_a_bad_pattern_is_refused_with_its_line(admin: Browser) -> None:
    response = admin.client.post(ADD, _form(patterns="re:(oops"))
    assert "Invalid regular expression" in response.content.decode() and "re:(oops" in response.content.decode()
    assert not EscalationRule.objects.filter(name="legal-test").exists()


def test_samples_are_shown_with_their_matches_after_saving(admin: Browser) -> None:
    response = admin.client.post(ADD, _form(samples="I'm calling my lawyer\nI'm not a lawyer", expect_no_match="我不会起诉的"),
                                 follow=True)
    page = response.content.decode()
    assert EscalationRule.objects.filter(name="legal-test").exists()
    assert "I&#x27;m calling my lawyer → lawyer" in page and "I&#x27;m not a lawyer → no match" in page


def test_prompt_versions_are_added_with_the_next_number_and_never_edited(admin: Browser) -> None:
    response = admin.client.post("/admin/analysis/promptversion/add/", {"instructions": "Be exact. {categories}", "note": "v2"})
    assert response.status_code == 302
    latest = PromptVersion.objects.order_by("-number").first()
    assert latest is not None and latest.number == 2 and latest.created_by is not None
    page = admin.client.get(f"/admin/analysis/promptversion/{latest.pk}/change/")
    assert page.status_code == 200 and 'name="instructions"' not in page.content.decode()  # read-only


@pytest.mark.parametrize("who", ["guest", "customer", "agent"])
def test_nobody_else_reaches_the_analysis_admin(who: str) -> None:
    if who == "guest":
        browser = Browser.guest()
    else:
        role = roles.AGENT if who == "agent" else None
        browser = Browser.logged_in(make_user(f"{who}@example.com", role=role, mfa=who == "agent"))
    for url in (ADD, "/admin/analysis/webhookdelivery/", "/admin/analysis/messageanalysis/"):
        response = browser.client.get(url)
        assert response.status_code in (302, 403, 404), url
        assert response.status_code != 200
