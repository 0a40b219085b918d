"""The website widget over HTTP: the iframe page and its headers, the config endpoint (CORS), the
token-authenticated "new conversation", and the admins' widget list."""
from __future__ import annotations

import time
from typing import Any

import pytest
from django.core import signing
from django.test import Client

from accounts import roles
from chat.models import Conversation
from tests.accounts.support import make_user
from tests.widgets.widget_support import make_widget, shop_persona, token_for
from widgets import tokens as widgets

pytestmark = pytest.mark.django_db
SHOP = "https://shop.example.com"


@pytest.fixture
def widget():
    return make_widget(origins=f"{SHOP}\nhttps://*.example.cn", title="Shop chat", colour="#0f766e",
                       greeting="Need help with an order?")


def frame(client: Client, widget, **headers: str):
    return client.get(f"/widget/{widget.public_key}/", **headers)


# --- the iframe page ------------------------------------------------------------------------------
def test_frame_page_is_framable_only_by_the_allowed_origins(widget):
    response = frame(Client(), widget)
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == f"frame-ancestors {SHOP} https://*.example.cn"
    assert "X-Frame-Options" not in response
    assert response["Cache-Control"] == "private, no-store"


def test_every_other_page_still_refuses_to_be_framed(widget):
    client = Client()
    for path in ("/", "/p/shop/", f"/widget/{widget.public_key}/config", "/accounts/login/", "/widgets/"):
        response = client.get(path)
        assert response["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors" not in response.get("Content-Security-Policy", ""), path


def test_a_widget_with_no_origins_can_be_framed_by_nobody():
    widget = make_widget(origins="")
    assert frame(Client(), widget)["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_frame_page_is_bound_to_the_widget_persona_and_look(widget):
    response = frame(Client(), widget)
    config = response.context["chat_config"]
    assert config["persona"] == {"name": "Shop chat", "greeting": "Need help with an order?", "unavailableText": ""}
    assert config["newConversationUrl"] == f"/widget/{widget.public_key}/new/"
    assert config["wsPathTemplate"] == f"/ws/widget/{widget.public_key}/{{id}}/"
    page = response.content.decode()
    assert "--widget-colour: #0f766e" in page and 'id="widget-close"' in page
    assert 'id="sidebar"' not in page  # compact: no history sidebar, no site header
    # The page hands out a new visitor identity, valid for this widget only.
    visitor = widgets.visitor_for(widget, config["widget"]["token"])
    assert visitor.actor.guest_id.startswith(f"w{widget.pk}.")


def test_frame_page_sets_no_cookie(widget):
    # Cookies would not come back in a third-party iframe anyway; the page must not depend on them.
    response = frame(Client(), widget)
    assert not response.cookies


@pytest.mark.parametrize("key", ["nope", "x" * 22])
def test_unknown_widget_is_404(widget, key):
    client = Client()
    assert client.get(f"/widget/{key}/").status_code == 404
    assert client.get(f"/widget/{key}/config").status_code == 404
    assert client.post(f"/widget/{key}/new/", HTTP_X_ANYHOUR_WIDGET_TOKEN=token_for(widget)).status_code == 404


def test_inactive_widget_is_404(widget):
    token = token_for(widget)
    widget.is_active = False
    widget.save()
    client = Client()
    assert frame(client, widget).status_code == 404
    assert client.get(f"/widget/{widget.public_key}/config").status_code == 404
    assert client.post(f"/widget/{widget.public_key}/new/", HTTP_X_ANYHOUR_WIDGET_TOKEN=token).status_code == 404


@pytest.mark.parametrize(
    "referer, status",
    [
        ("https://shop.example.com/products/42", 200),
        ("https://www.example.cn/", 200),  # the wildcard entry
        ("http://testserver/widgets/", 200),  # our own site (an admin following the link)
        ("https://evil.example.net/", 403),
        ("https://example.cn/", 403),  # the wildcard does not cover the bare domain
    ],
)
def test_frame_page_checks_the_referer(widget, referer, status):
    response = frame(Client(), widget, HTTP_REFERER=referer)
    assert response.status_code == status
    # Refused or not, the browser gets the same frame-ancestors rule.
    assert response["Content-Security-Policy"] == f"frame-ancestors {SHOP} https://*.example.cn"
    if status == 403:
        assert "cannot be embedded on this website" in response.content.decode()
        assert "chat_config" not in response.context


def test_referer_check_can_be_switched_off(widget, settings):
    settings.WIDGET_CHECK_REFERER = False
    assert frame(Client(), widget, HTTP_REFERER="https://evil.example.net/").status_code == 200


# --- the config endpoint (read by the script on the host page) ------------------------------------
def test_config_answers_allowed_origins_with_cors(widget):
    response = Client().get(f"/widget/{widget.public_key}/config", HTTP_ORIGIN=SHOP)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response["Vary"]
    assert "Access-Control-Allow-Credentials" not in response
    assert response.json() == {
        "key": widget.public_key, "title": "Shop chat", "colour": "#0f766e", "textColour": "#ffffff",
        "position": "right", "frameUrl": f"/widget/{widget.public_key}/",
        "labels": {"open": "Open chat: Shop chat", "close": "Close chat"},
    }


def test_config_matches_wildcard_origins(widget):
    response = Client().get(f"/widget/{widget.public_key}/config", HTTP_ORIGIN="https://m.shop.example.cn")
    assert response["Access-Control-Allow-Origin"] == "https://m.shop.example.cn"


@pytest.mark.parametrize("origin", ["https://evil.example.net", "http://shop.example.com", "null", "https://example.cn"])
def test_config_refuses_other_origins_without_cors(widget, origin):
    response = Client().get(f"/widget/{widget.public_key}/config", HTTP_ORIGIN=origin)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert response.json()["error"]["code"] == "origin_not_allowed"


def test_config_labels_follow_the_browser_language(widget):
    response = Client().get(f"/widget/{widget.public_key}/config", HTTP_ORIGIN=SHOP, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200 and "Accept-Language" in response["Vary"]


# --- new conversation: the visitor token ------------------------------------------------------------
def new(client: Client, widget, token: str | None, **headers: str):
    if token is not None:
        headers["HTTP_X_ANYHOUR_WIDGET_TOKEN"] = token
    return client.post(f"/widget/{widget.public_key}/new/", **headers)


def test_new_conversation_with_a_token_gets_the_widget_persona(widget):
    token = token_for(widget, "v" * 32)
    # No cookie and no CSRF token: the token header is the only credential (nothing ambient to forge).
    response = new(Client(enforce_csrf_checks=True), widget, token)
    assert response.status_code == 201
    data = response.json()
    conversation = Conversation.objects.get(public_id=data["id"])
    assert conversation.persona == widget.persona
    assert conversation.owner is None and conversation.guest_id == f"w{widget.pk}.{'v' * 32}"
    assert data["ws"] == f"/ws/widget/{widget.public_key}/{data['id']}/"


def test_new_conversation_without_a_token_is_401(widget):
    response = new(Client(), widget, None)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"
    assert Conversation.objects.count() == 0


def test_tampered_token_is_401(widget):
    token = token_for(widget, "v" * 32)
    payload, stamp, signature = token.split(".")
    forged = signing.b64_encode(b'{"k":"%s","v":"%s"}' % (widget.public_key.encode(), b"w" * 32)).decode()
    for bad in (f"{forged}.{stamp}.{signature}", f"{payload}.{stamp}.{signature[:-2]}xx", token + "x", "garbage"):
        assert new(Client(), widget, bad).status_code == 401, bad
    assert Conversation.objects.count() == 0


def test_expired_token_is_401(widget, settings, monkeypatch):
    token = token_for(widget)
    later = time.time() + settings.WIDGET_VISITOR_TOKEN_MAX_AGE + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert new(Client(), widget, token).status_code == 401


def test_token_of_another_widget_is_401(widget):
    other = make_widget(widget.persona, name="Other brand")
    assert new(Client(), widget, token_for(other)).status_code == 401
    assert new(Client(), other, token_for(widget)).status_code == 401


def test_a_token_signed_for_something_else_is_401(widget):
    # Same payload, but signed by another part of the app (another salt): not a visitor token.
    other = signing.TimestampSigner(salt="something.else", sep=".").sign_object({"k": widget.public_key, "v": "v" * 32})
    assert new(Client(), widget, other).status_code == 401


def test_session_cookie_is_not_a_widget_credential(widget):
    admin = make_user("admin@example.com", role=roles.ADMIN, mfa=True)
    client = Client()
    client.force_login(admin)
    assert new(client, widget, None).status_code == 401


def test_cross_origin_post_is_refused(widget):
    token = token_for(widget)
    assert new(Client(), widget, token, HTTP_ORIGIN=SHOP).status_code == 403
    assert new(Client(), widget, token, HTTP_ORIGIN="http://testserver").status_code == 201


def test_new_conversation_needs_post(widget):
    assert Client().get(f"/widget/{widget.public_key}/new/").status_code == 405


def test_new_conversation_is_rate_limited_per_visitor(widget, settings):
    settings.CHAT_NEW_CONVERSATIONS_PER_HOUR = 2
    token = token_for(widget)
    assert [new(Client(), widget, token).status_code for _ in range(3)] == [201, 201, 429]
    assert new(Client(), widget, token_for(widget)).status_code == 201  # another visitor


# --- the admins' widget list -----------------------------------------------------------------------
MFA_SETUP = "/accounts/2fa/totp/activate/"
WIDGET_LIST = {
    # principal: (role, mfa) -> what they get
    "guest": ("redirect", "/accounts/login/?next=/widgets/"),
    "customer": 403,
    "agent_mfa": 403,
    "agent_no_mfa": ("redirect", MFA_SETUP),
    "admin_mfa": 200,
    "admin_no_mfa": ("redirect", MFA_SETUP),
}
USERS = {
    "customer": (None, False), "agent_mfa": (roles.AGENT, True), "agent_no_mfa": (roles.AGENT, False),
    "admin_mfa": (roles.ADMIN, True), "admin_no_mfa": (roles.ADMIN, False),
}


def client_for(principal: str) -> Client:
    client = Client()
    if principal != "guest":
        role, mfa = USERS[principal]
        client.force_login(make_user(f"{principal.replace('_', '.')}@example.com", role=role, mfa=mfa))
    return client


def outcome(response) -> Any:
    return ("redirect", response["Location"]) if response.status_code == 302 else response.status_code


@pytest.mark.parametrize("principal", list(WIDGET_LIST), ids=[f"{p}|widget_list" for p in WIDGET_LIST])
def test_widget_list_is_for_admins(widget, principal):
    response = client_for(principal).get("/widgets/")
    assert outcome(response) == WIDGET_LIST[principal]
    if response.status_code == 200:
        page = response.content.decode()
        snippet = (f'&lt;script src=&quot;http://testserver/static/widget/anyhour-widget.js&quot; '
                   f'data-widget=&quot;{widget.public_key}&quot; async&gt;&lt;/script&gt;')
        assert snippet in page
        assert "https://shop.example.com, https://*.example.cn" in page
    else:
        assert widget.public_key not in response.content.decode()


ADMIN_CHANGELIST = {"guest": "login", "customer": "login", "agent_mfa": "login", "admin_mfa": 200}


@pytest.mark.parametrize("principal", list(ADMIN_CHANGELIST), ids=[f"{p}|widget_admin" for p in ADMIN_CHANGELIST])
def test_widgets_in_the_django_admin(widget, principal):
    response = client_for(principal).get("/admin/widgets/widget/")
    if ADMIN_CHANGELIST[principal] == "login":
        assert outcome(response) == ("redirect", "/admin/login/?next=/admin/widgets/widget/")
    else:
        assert response.status_code == 200 and "Shop" in response.content.decode()


def test_admin_can_create_a_widget_in_the_django_admin():
    persona = shop_persona()
    client = client_for("admin_mfa")
    form = {
        "name": "Blog", "persona": persona.pk, "title": "", "colour": "#FF5500", "greeting": "",
        "position": "left", "allowed_origins": "https://Blog.example.com/\n", "is_active": "on",
    }
    response = client.post("/admin/widgets/widget/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    from widgets.models import Widget

    created = Widget.objects.get(name="Blog")
    assert created.allowed_origins == "https://blog.example.com" and created.colour == "#ff5500"
    bad = client.post("/admin/widgets/widget/add/", form | {"name": "Bad", "allowed_origins": "blog.example.com/x"})
    assert bad.status_code == 200 and "is not an origin" in bad.content.decode()
    assert not Widget.objects.filter(name="Bad").exists()


# --- cookies change nothing on the widget's doors ---------------------------------------------------
@pytest.mark.parametrize("principal", ["guest", *USERS])
def test_widget_doors_answer_every_principal_alike(widget, principal):
    # Embedded on a same-site page the browser may send the chat's cookies; the widget reads none:
    # no MFA redirect for staff without MFA, no staff powers, no session guest id.
    client = client_for(principal)
    page = frame(client, widget)
    assert page.status_code == 200 and "chat_config" in page.context
    assert new(client, widget, None).status_code == 401
    created = new(client, widget, token_for(widget, "v" * 32))
    assert created.status_code == 201
    assert Conversation.objects.get(public_id=created.json()["id"]).guest_id == f"w{widget.pk}.{'v' * 32}"


def test_frame_page_offers_the_handoff_control(widget):
    page = frame(Client(), widget).content.decode()
    assert 'id="handoff-btn"' in page and 'id="handoff-bar"' in page
