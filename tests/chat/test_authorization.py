"""The authorization matrix: every principal against every door (HTTP views and the websocket).

Principals: two anonymous guests (A owns a conversation, B does not), two customers (C1 owns a
conversation, C2 does not), and an agent and an admin each with and without TOTP. Agents and
admins without MFA have no staff powers anywhere: pages send them to MFA setup, and on the
websocket (where no middleware runs) they are plain customers.

Every cell is one test, named principal|door|target, and asserts what that person would see.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts import roles
from chat import services
from chat.models import Conversation, Message, new_public_id
from personas.services import ensure_default_persona
from tests.accounts.support import Browser, make_user
from tests.conftest import db, receive_until

MFA_SETUP = "/accounts/2fa/totp/activate/"

# name -> (email, role, has TOTP); None: an anonymous guest.
PRINCIPALS: dict[str, tuple[str, str | None, bool] | None] = {
    "guest_a": None,
    "guest_b": None,
    "customer_c1": ("c1@example.com", None, False),
    "customer_c2": ("c2@example.com", None, False),
    "agent_mfa": ("agent@example.com", roles.AGENT, True),
    "agent_no_mfa": ("agent.nomfa@example.com", roles.AGENT, False),
    "admin_mfa": ("admin@example.com", roles.ADMIN, True),
    "admin_no_mfa": ("admin.nomfa@example.com", roles.ADMIN, False),
}
GUESTS = ("guest_a", "guest_b")
USERS = tuple(name for name in PRINCIPALS if name not in GUESTS)
NO_MFA_STAFF = ("agent_no_mfa", "admin_no_mfa")
# The conversations the matrix aims at: guest A's, customer C1's, and an id nobody has.
TARGETS = ("guest_a_conv", "c1_conv", "guessed")


class World:
    """Guest A and customer C1 with one answered question each; other principals on demand."""

    def __init__(self, browser_for: Callable[[Any], Browser]):
        self.browser_for = browser_for
        self.browsers: dict[str, Browser] = {}
        self.persona = ensure_default_persona()
        self.conversations = {
            "guest_a_conv": self._seeded(self.browser("guest_a")),
            "c1_conv": self._seeded(self.browser("customer_c1")),
        }
        self.guessed = new_public_id()

    def browser(self, name: str) -> Browser:
        if name not in self.browsers:
            spec = PRINCIPALS[name]
            if spec is None:
                self.browsers[name] = Browser.guest()
            else:
                email, role, mfa = spec
                self.browsers[name] = self.browser_for(make_user(email, role=role, mfa=mfa))
        return self.browsers[name]

    def _seeded(self, owner: Browser) -> Conversation:
        conversation = services.create_conversation(owner.actor)
        _, answer = services.begin_turn(conversation, "Where is my parcel?", "seed", self.persona, "seed-worker")
        services.finish_message(answer.pk, content="It ships today.", status=Message.Status.COMPLETE)
        return conversation

    def target_id(self, target: str) -> str:
        return self.guessed if target == "guessed" else self.conversations[target].public_id


@pytest.fixture
def http_world() -> World:
    # HTTP: signed in through Client.force_login (the session Django's login writes).
    return World(Browser.logged_in)


@pytest.fixture
def ws_world() -> World:
    # Websockets: a session written with Django's auth keys, sent as a cookie header.
    return World(Browser.with_session)


def outcome(response: Any) -> Any:
    """What the browser gets: a status code, or ``("redirect", location)``."""
    if response.status_code == 302:
        return ("redirect", response["Location"])
    return response.status_code


def cells(table: dict[str, tuple[Any, ...]], columns: tuple[str, ...], door: str) -> list[Any]:
    return [
        pytest.param(principal, column, expected, id=f"{principal}|{door}|{column}")
        for principal, row in table.items()
        for column, expected in zip(columns, row, strict=True)
    ]


# --- HTTP: the chat page ------------------------------------------------------------------------
WRITE, READ = "writes", "reads only"
MFA = ("redirect", MFA_SETUP)

CHAT_PAGE = {
    #                 guest_a_conv  c1_conv  guessed
    "guest_a":       (WRITE,        404,     404),
    "guest_b":       (404,          404,     404),
    "customer_c1":   (404,          WRITE,   404),
    "customer_c2":   (404,          404,     404),
    "agent_mfa":     (READ,         READ,    404),
    "agent_no_mfa":  (MFA,          MFA,     MFA),
    "admin_mfa":     (READ,         READ,    404),
    "admin_no_mfa":  (MFA,          MFA,     MFA),
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal, target, expected", cells(CHAT_PAGE, TARGETS, "chat_page"))
def test_chat_page(http_world: World, principal: str, target: str, expected: Any) -> None:
    conversation_id = http_world.target_id(target)
    response = http_world.browser(principal).client.get(f"/c/{conversation_id}/")
    if expected in (WRITE, READ):
        assert response.status_code == 200
        assert response.context["conversation"].public_id == conversation_id
        assert [m["content"] for m in response.context["initial_messages"]] == ["Where is my parcel?", "It ships today."]
        read_only = expected == READ
        assert response.context["read_only"] is read_only
        assert response.context["chat_config"]["readOnly"] is read_only
    else:
        assert outcome(response) == expected


# The home page: 200 and the principal's own history, or MFA setup.
HOME = {
    "guest_a": ["guest_a_conv"],
    "guest_b": [],
    "customer_c1": ["c1_conv"],
    "customer_c2": [],
    "agent_mfa": [],  # agents read every transcript, but their history is their own
    "agent_no_mfa": MFA,
    "admin_mfa": [],
    "admin_no_mfa": MFA,
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal", list(HOME), ids=[f"{p}|home" for p in HOME])
def test_home_page_lists_only_own_conversations(http_world: World, principal: str) -> None:
    response = http_world.browser(principal).client.get("/")
    expected = HOME[principal]
    if expected == MFA:
        assert outcome(response) == MFA
        return
    assert response.status_code == 200
    listed = [c.public_id for c in response.context["conversations"]]
    assert listed == [http_world.conversations[name].public_id for name in expected]


NEW_CONVERSATION = dict.fromkeys(PRINCIPALS, 201) | dict.fromkeys(NO_MFA_STAFF, MFA)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "principal, expected", list(NEW_CONVERSATION.items()), ids=[f"{p}|new_conversation" for p in NEW_CONVERSATION]
)
def test_new_conversation(http_world: World, principal: str, expected: Any) -> None:
    browser = http_world.browser(principal)
    response = browser.client.post("/c/new/")
    assert outcome(response) == expected
    if expected == 201:
        created = Conversation.objects.get(public_id=response.json()["id"])
        if browser.user is None:
            assert created.owner is None and created.guest_id == browser.guest_id
        else:
            assert created.owner == browser.user and created.guest_id == ""
    else:
        assert Conversation.objects.count() == 2  # only the two seeded ones


# --- HTTP: the transcript browser (agents and admins) ---------------------------------------------
# Everyone else gets 403 on every transcript URL, whatever the id (nothing to probe).
TRANSCRIPT_LIST = (
    dict.fromkeys(PRINCIPALS, 403) | {"agent_mfa": 200, "admin_mfa": 200} | dict.fromkeys(NO_MFA_STAFF, MFA)
)


@pytest.mark.django_db
@pytest.mark.parametrize("principal", list(TRANSCRIPT_LIST), ids=[f"{p}|transcript_list" for p in TRANSCRIPT_LIST])
def test_transcript_list(http_world: World, principal: str) -> None:
    response = http_world.browser(principal).client.get("/transcripts/", {"q": "parcel"})
    assert outcome(response) == TRANSCRIPT_LIST[principal]
    if response.status_code == 200:
        listed = {c.public_id for c in response.context["conversations"]}
        assert listed == {c.public_id for c in http_world.conversations.values()}


TRANSCRIPT_VIEW = {
    #                 guest_a_conv  c1_conv  guessed
    "guest_a":       (403,          403,     403),
    "guest_b":       (403,          403,     403),
    "customer_c1":   (403,          403,     403),  # their own too: this is the staff view
    "customer_c2":   (403,          403,     403),
    "agent_mfa":     (200,          200,     404),
    "agent_no_mfa":  (MFA,          MFA,     MFA),
    "admin_mfa":     (200,          200,     404),
    "admin_no_mfa":  (MFA,          MFA,     MFA),
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal, target, expected", cells(TRANSCRIPT_VIEW, TARGETS, "transcript_view"))
def test_transcript_view(http_world: World, principal: str, target: str, expected: Any) -> None:
    conversation_id = http_world.target_id(target)
    response = http_world.browser(principal).client.get(f"/transcripts/{conversation_id}/")
    assert outcome(response) == expected
    if expected == 200:
        assert response.context["conversation"].public_id == conversation_id
        assert [r["message"].content for r in response.context["rows"]] == ["Where is my parcel?", "It ships today."]


# --- HTTP: human review of a customer message's sentiment (analysis app, agents and admins) -------
# Everyone else gets the 404 of an unknown page (staff_required); an unknown conversation is 404.
SENTIMENT_REVIEW = {
    #                 guest_a_conv  c1_conv  guessed
    "guest_a":       (404,          404,     404),
    "guest_b":       (404,          404,     404),
    "customer_c1":   (404,          404,     404),  # their own too: reviewing is staff work
    "customer_c2":   (404,          404,     404),
    "agent_mfa":     (303,          303,     404),
    "agent_no_mfa":  (MFA,          MFA,     MFA),
    "admin_mfa":     (303,          303,     404),
    "admin_no_mfa":  (MFA,          MFA,     MFA),
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal, target, expected", cells(SENTIMENT_REVIEW, TARGETS, "sentiment_review"))
def test_sentiment_review(http_world: World, principal: str, target: str, expected: Any) -> None:
    from analysis.models import MessageAnalysis

    conversation_id = http_world.target_id(target)
    response = http_world.browser(principal).client.post(
        f"/analysis/review/{conversation_id}/1/", {"sentiment": "negative", "next": f"/transcripts/{conversation_id}/"}
    )
    assert outcome(response) == expected
    reviewed = MessageAnalysis.objects.filter(human_sentiment="negative", message__conversation__public_id=conversation_id)
    assert reviewed.exists() == (expected == 303)


# The own-data zip: signed-in users get their own conversations (and nobody else's); guests log in.
DATA_EXPORT = dict.fromkeys(GUESTS, ("redirect", "/accounts/login/?next=/accounts/profile/export.zip")) | {
    "customer_c1": ["c1_conv"], "customer_c2": [], "agent_mfa": [], "agent_no_mfa": [], "admin_mfa": [],
    "admin_no_mfa": [],
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal", list(DATA_EXPORT), ids=[f"{p}|data_export" for p in DATA_EXPORT])
def test_data_export(http_world: World, principal: str) -> None:
    import io
    import json
    import zipfile

    response = http_world.browser(principal).client.get("/accounts/profile/export.zip")
    expected = DATA_EXPORT[principal]
    if principal in GUESTS:
        assert outcome(response) == expected
        return
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    exported = [json.loads(archive.read(n))["conversation"]["id"] for n in archive.namelist() if n.endswith(".json")]
    assert exported == [http_world.conversations[name].public_id for name in expected]


# --- HTTP: account pages --------------------------------------------------------------------------
# Signed-in users always reach their account pages (that is where MFA is set up); the profile
# says which role they were granted and which is in force.
PROFILE = {
    "guest_a": ("redirect", "/accounts/login/?next=/accounts/profile/"),
    "guest_b": ("redirect", "/accounts/login/?next=/accounts/profile/"),
    "customer_c1": ("customer", "customer", 1),
    "customer_c2": ("customer", "customer", 0),
    "agent_mfa": ("agent", "agent", 0),
    "agent_no_mfa": ("agent", "customer", 0),
    "admin_mfa": ("admin", "admin", 0),
    "admin_no_mfa": ("admin", "customer", 0),
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal", list(PROFILE), ids=[f"{p}|profile" for p in PROFILE])
def test_profile(http_world: World, principal: str) -> None:
    response = http_world.browser(principal).client.get("/accounts/profile/")
    expected = PROFILE[principal]
    if principal in GUESTS:
        assert outcome(response) == expected
        return
    assert response.status_code == 200
    role, in_force, conversations = expected
    context = response.context
    assert (context["role"], context["role_in_force"], context["conversation_count"]) == (role, in_force, conversations)
    assert context["has_mfa"] is PRINCIPALS[principal][2]


DELETE_ACCOUNT = dict.fromkeys(USERS, 200) | dict.fromkeys(
    GUESTS, ("redirect", "/accounts/login/?next=/accounts/profile/delete/")
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "principal, expected", list(DELETE_ACCOUNT.items()), ids=[f"{p}|delete_account" for p in DELETE_ACCOUNT]
)
def test_delete_account_page(http_world: World, principal: str, expected: Any) -> None:
    response = http_world.browser(principal).client.get("/accounts/profile/delete/")
    assert outcome(response) == expected
    if expected == 200:
        assert "confirm" in response.context["form"].fields


# --- HTTP: the Django admin -----------------------------------------------------------------------
ADMIN_PAGES = {
    "admin_index": lambda world: "/admin/",
    "persona_change": lambda world: f"/admin/personas/persona/{world.persona.pk}/change/",
    "audit_log": lambda world: "/admin/accounts/auditevent/",
    "transcripts": lambda world: "/admin/chat/conversation/",
    "authenticators": lambda world: "/admin/mfa/authenticator/",
}
ADMIN_LOGIN = "admin login"  # Django's admin redirects to its login, which forwards (see below)
ADMIN = {
    "guest_a": ADMIN_LOGIN,
    "guest_b": ADMIN_LOGIN,
    "customer_c1": ADMIN_LOGIN,
    "customer_c2": ADMIN_LOGIN,
    "agent_mfa": ADMIN_LOGIN,
    "agent_no_mfa": MFA,
    "admin_mfa": 200,
    "admin_no_mfa": MFA,
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "principal, page, expected",
    [
        pytest.param(principal, page, expected, id=f"{principal}|{page}")
        for page in ADMIN_PAGES
        for principal, expected in ADMIN.items()
    ],
)
def test_admin_pages(http_world: World, principal: str, page: str, expected: Any) -> None:
    path = ADMIN_PAGES[page](http_world)
    response = http_world.browser(principal).client.get(path)
    if expected == ADMIN_LOGIN:
        assert outcome(response) == ("redirect", f"/admin/login/?next={path}")
    else:
        assert outcome(response) == expected


# The admin's login never takes credentials: strangers go to allauth's login (rate limits, second
# factor), staff to the index, signed-in non-staff are refused.
ADMIN_LOGIN_PAGE = {
    "guest_a": ("redirect", "/accounts/login/?next=/admin/login/%3Fnext%3D/admin/"),
    "guest_b": ("redirect", "/accounts/login/?next=/admin/login/%3Fnext%3D/admin/"),
    "customer_c1": 403,
    "customer_c2": 403,
    "agent_mfa": 403,
    "agent_no_mfa": MFA,  # an /admin/ page: the MFA middleware sends them to setup first
    "admin_mfa": ("redirect", "/admin/"),
    "admin_no_mfa": MFA,
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal", list(ADMIN_LOGIN_PAGE), ids=[f"{p}|admin_login" for p in ADMIN_LOGIN_PAGE])
def test_admin_login_forwards_to_allauth(http_world: World, principal: str) -> None:
    response = http_world.browser(principal).client.get("/admin/login/?next=/admin/")
    assert outcome(response) == ADMIN_LOGIN_PAGE[principal]


@pytest.mark.django_db
def test_admin_login_form_does_not_take_an_admins_password(http_world: World) -> None:
    # A signed-in customer who knows an admin's password must not become that admin through the
    # admin's own form (which has neither allauth's rate limits nor the second factor).
    from tests.accounts.support import PASSWORD

    http_world.browser("admin_mfa")  # the admin, with TOTP
    customer = http_world.browser("customer_c1")
    response = customer.client.post("/admin/login/?next=/admin/", {"username": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert customer.client.get("/admin/").status_code == 302  # still the customer
    assert int(customer.session["_auth_user_id"]) == customer.user.pk
    anonymous = Client()
    response = anonymous.post("/admin/login/", {"username": "admin@example.com", "password": PASSWORD})
    assert outcome(response) == ("redirect", "/accounts/login/?next=/admin/login/")
    assert "_auth_user_id" not in anonymous.session


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
@pytest.mark.parametrize("principal", list(PRINCIPALS))
def test_health_endpoints_answer_everyone(http_world: World, principal: str, path: str, settings: Any) -> None:
    settings.READYZ_REQUIRE_ENGINE = False
    assert http_world.browser(principal).client.get(path).status_code == 200


# --- HTTP: the agent desk (docs/desk.md) --------------------------------------------------------
DESK_PAGES = ("/desk/", "/desk/panel/?view=mine", "/desk/panel/?view=open")
DESK = dict.fromkeys(PRINCIPALS, 404) | {"agent_mfa": 200, "admin_mfa": 200} | dict.fromkeys(NO_MFA_STAFF, MFA)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "principal, page, expected",
    [pytest.param(p, page, DESK[p], id=f"{p}|desk|{page}") for p in PRINCIPALS for page in DESK_PAGES],
)
def test_desk_pages(http_world: World, principal: str, page: str, expected: Any) -> None:
    assert outcome(http_world.browser(principal).client.get(page)) == expected


DESK_CONVERSATION = {
    #                 guest_a_conv  c1_conv  guessed
    "guest_a":       (404,          404,     404),
    "guest_b":       (404,          404,     404),
    "customer_c1":   (404,          404,     404),
    "customer_c2":   (404,          404,     404),
    "agent_mfa":     (200,          200,     404),
    "agent_no_mfa":  (MFA,          MFA,     MFA),
    "admin_mfa":     (200,          200,     404),
    "admin_no_mfa":  (MFA,          MFA,     MFA),
}


@pytest.mark.django_db
@pytest.mark.parametrize("principal, target, expected", cells(DESK_CONVERSATION, TARGETS, "desk_conversation"))
def test_desk_conversation(http_world: World, principal: str, target: str, expected: Any) -> None:
    response = http_world.browser(principal).client.get(f"/desk/c/{http_world.target_id(target)}/")
    assert outcome(response) == expected
    if expected == 200:
        assert [m["content"] for m in response.context["initial_messages"]] == ["Where is my parcel?", "It ships today."]


# Claim, hand back, resolve: only staff act; everyone else gets the 404 of an unknown page and
# nothing changes. (Claim on an assistant conversation is a takeover.)
DESK_ACTIONS = ("claim", "hand-back", "resolve")
CLAIMED = ("redirect", "/desk/c/{id}/")
DESK_ACT = {
    "claim": dict.fromkeys(PRINCIPALS, 404) | {"agent_mfa": CLAIMED, "admin_mfa": CLAIMED}
    | dict.fromkeys(NO_MFA_STAFF, MFA),
    # Nobody is involved yet: staff are told it does not apply (409).
    "hand-back": dict.fromkeys(PRINCIPALS, 404) | {"agent_mfa": 409, "admin_mfa": 409}
    | dict.fromkeys(NO_MFA_STAFF, MFA),
    "resolve": dict.fromkeys(PRINCIPALS, 404) | {"agent_mfa": ("redirect", "/desk/"), "admin_mfa": ("redirect", "/desk/")}
    | dict.fromkeys(NO_MFA_STAFF, MFA),
}
AFTER = {"claim": "with_agent", "hand-back": "assistant", "resolve": "resolved"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "principal, action, target, expected",
    [
        pytest.param(p, action, target, DESK_ACT[action][p] if target != "guessed" or DESK_ACT[action][p] == MFA else 404,
                     id=f"{p}|desk_{action}|{target}")
        for p in PRINCIPALS for action in DESK_ACTIONS for target in TARGETS
    ],
)
def test_desk_actions(http_world: World, principal: str, action: str, target: str, expected: Any) -> None:
    conversation_id = http_world.target_id(target)
    response = http_world.browser(principal).client.post(f"/desk/c/{conversation_id}/{action}/")
    if isinstance(expected, tuple) and expected != MFA:
        expected = (expected[0], expected[1].replace("{id}", conversation_id))
    assert outcome(response) == expected
    if target == "guessed":
        return
    state = Conversation.objects.get(public_id=conversation_id).state
    changed = expected not in (404, 409, MFA)
    assert state == (AFTER[action] if changed else "assistant")


# --- websocket: connect ---------------------------------------------------------------------------
OPEN, REFUSED = "ready", 4403
WS_CONNECT = {
    #                 guest_a_conv  c1_conv  guessed
    "guest_a":       (OPEN,         REFUSED, REFUSED),
    "guest_b":       (REFUSED,      REFUSED, REFUSED),
    "customer_c1":   (REFUSED,      OPEN,    REFUSED),
    "customer_c2":   (REFUSED,      REFUSED, REFUSED),
    "agent_mfa":     (OPEN,         OPEN,    REFUSED),
    "agent_no_mfa":  (REFUSED,      REFUSED, REFUSED),  # a customer until MFA is set up
    "admin_mfa":     (OPEN,         OPEN,    REFUSED),
    "admin_no_mfa":  (REFUSED,      REFUSED, REFUSED),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("principal, target, expected", cells(WS_CONNECT, TARGETS, "ws_connect"))
async def test_websocket_connect(
    ws_world: World, connect: Any, engine_sim: Any, principal: str, target: str, expected: Any
) -> None:
    browser = await db(ws_world.browser, principal)
    conversation_id = ws_world.target_id(target)
    ws = await connect(browser, conversation_id, expect_ready=False)
    if expected == OPEN:
        ready = await ws.receive_json_from(timeout=5)
        assert ready["type"] == "ready" and ready["conversation"] == conversation_id and ready["last_seq"] == 2
    else:
        # Accepted, then closed with the code: the browser sees 4403 for unknown and foreign alike.
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": REFUSED}


# --- websocket: frames ----------------------------------------------------------------------------
FRAMES = ("send", "stop", "regenerate", "resume", "ping", "handoff", "typing", "claim")
ALLOWED = {"send": "acked", "stop": "stopped", "regenerate": "regenerated", "resume": "replayed", "ping": "pong",
           "handoff": "queued", "typing": "relayed", "claim": "unknown_type"}
# Staff reading a conversation they do not hold: the agent frames (send, typing) are refused like
# the customer's; claiming is the desk's (HTTP), never a chat frame.
FORBIDDEN = {"send": "forbidden", "stop": "forbidden", "regenerate": "forbidden", "resume": "replayed", "ping": "pong",
             "handoff": "forbidden", "typing": "forbidden", "claim": "unknown_type"}
# Who can open a socket at all (see WS_CONNECT), on which conversation, and what each frame does.
WS_FRAMES = {
    ("guest_a", "guest_a_conv"): ALLOWED,
    ("customer_c1", "c1_conv"): ALLOWED,
    ("agent_mfa", "guest_a_conv"): FORBIDDEN,
    ("agent_mfa", "c1_conv"): FORBIDDEN,
    ("admin_mfa", "guest_a_conv"): FORBIDDEN,
    ("admin_mfa", "c1_conv"): FORBIDDEN,
}
OWNER = {"guest_a_conv": "guest_a", "c1_conv": "customer_c1"}


async def _messages(conversation: Conversation) -> list[tuple[int, str, str, bool]]:
    return await db(
        lambda: list(
            Message.objects.filter(conversation=conversation)
            .order_by("seq")
            .values_list("seq", "role", "status", "superseded")
        )
    )


async def _send_frame(ws: Any, frame: str) -> str:
    """Send one frame and name what came back."""
    if frame == "send":
        await ws.send_json_to({"type": "send", "text": "And my refund?", "client_id": "m-1"})
        while True:
            message = await ws.receive_json_from(timeout=10)
            if message["type"] == "error":
                return message["code"]
            if message["type"] == "ack":
                assert message["message"]["content"] == "And my refund?"
                await receive_until(ws, "end")
                return "acked"
    if frame == "regenerate":
        await ws.send_json_to({"type": "regenerate"})
        message = await ws.receive_json_from(timeout=10)
        if message["type"] == "error":
            return message["code"]
        frames = [message] + await receive_until(ws, "end")
        starts = [f for f in frames if f["type"] == "start"]
        assert starts and starts[0]["message"]["seq"] == 3
        return "regenerated"
    if frame == "resume":
        await ws.send_json_to({"type": "resume", "seq": 0, "offset": 0})
        replay = [await ws.receive_json_from(timeout=5) for _ in range(2)]
        assert [(f["type"], f["message"]["seq"]) for f in replay] == [("message", 1), ("message", 2)]
        assert replay[1]["message"]["content"] == "It ships today."
        return "replayed"
    if frame == "ping":
        await ws.send_json_to({"type": "ping"})
        return (await ws.receive_json_from(timeout=5))["type"]
    if frame == "handoff":
        await ws.send_json_to({"type": "handoff"})
        message = await ws.receive_json_from(timeout=5)
        if message["type"] == "error":
            return message["code"]
        assert message == {"type": "conversation", "state": "waiting", "position": 1, "agent": None, "satisfaction": None}
        return "queued"
    if frame in ("typing", "claim"):
        # Typing is relayed to the others, never echoed: the sender's next frame is the pong.
        await ws.send_json_to({"type": frame})
        await ws.send_json_to({"type": "ping"})
        message = await ws.receive_json_from(timeout=5)
        return message["code"] if message["type"] == "error" else "relayed"
    raise AssertionError(frame)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "principal, target, frame, expected",
    [
        pytest.param(principal, target, frame, outcomes[frame], id=f"{principal}|ws_{frame}|{target}")
        for (principal, target), outcomes in WS_FRAMES.items()
        for frame in FRAMES
        if frame != "stop"
    ],
)
async def test_websocket_frames(
    ws_world: World, connect: Any, engine_sim: Any, principal: str, target: str, frame: str, expected: str
) -> None:
    conversation = ws_world.conversations[target]
    browser = await db(ws_world.browser, principal)
    ws = await connect(browser, conversation.public_id)
    before = await _messages(conversation)
    assert await _send_frame(ws, frame) == expected
    after = await _messages(conversation)
    state = await db(lambda: Conversation.objects.get(pk=conversation.pk).state)
    assert state == ("waiting" if expected == "queued" else "assistant")
    if expected in ("forbidden", "queued", "relayed", "unknown_type") or frame in ("resume", "ping"):
        assert after == before  # nothing was written
        await ws.send_json_to({"type": "ping"})  # and the reader's socket stays open
        assert (await ws.receive_json_from(timeout=5))["type"] == "pong"
    elif frame == "send":
        assert [row[:3] for row in after[2:]] == [(3, "user", "complete"), (4, "assistant", "complete")]
    elif frame == "regenerate":
        assert after[1] == (2, "assistant", "complete", True)  # the old answer is superseded
        assert after[2][:3] == (3, "assistant", "complete")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "principal, target, expected",
    [
        pytest.param(principal, target, outcomes["stop"], id=f"{principal}|ws_stop|{target}")
        for (principal, target), outcomes in WS_FRAMES.items()
    ],
)
async def test_websocket_stop(
    ws_world: World, connect: Any, engine_sim: Any, principal: str, target: str, expected: str
) -> None:
    # The owner asks a question; while the answer streams, `principal` presses stop.
    engine_sim.configure(tokens_per_second=40, tokens=40)
    conversation = ws_world.conversations[target]
    owner_ws = await connect(await db(ws_world.browser, OWNER[target]), conversation.public_id)
    ws = owner_ws if principal == OWNER[target] else await connect(await db(ws_world.browser, principal), conversation.public_id)
    await owner_ws.send_json_to({"type": "send", "text": "Tell me everything", "client_id": "m-1"})
    await receive_until(ws, "delta")
    await ws.send_json_to({"type": "stop"})
    if expected == "forbidden":
        assert (await receive_until(ws, "error"))[-1]["code"] == "forbidden"
        end = (await receive_until(owner_ws, "end"))[-1]["message"]
        assert end["status"] == "complete"  # the customer's answer ran to its end
    else:
        end = (await receive_until(ws, "end"))[-1]["message"]
        assert end["status"] == "stopped"
    saved = await db(lambda: Message.objects.get(conversation=conversation, seq=4))
    assert saved.status == ("complete" if expected == "forbidden" else "stopped")


@pytest.mark.django_db(transaction=True)
async def test_readers_watch_the_customers_turn_live(ws_world: World, connect: Any, engine_sim: Any) -> None:
    conversation = ws_world.conversations["c1_conv"]
    customer = await connect(await db(ws_world.browser, "customer_c1"), conversation.public_id)
    agent = await connect(await db(ws_world.browser, "agent_mfa"), conversation.public_id)
    await customer.send_json_to({"type": "send", "text": "Is anyone there?", "client_id": "m-1"})
    frames = await receive_until(agent, "end")
    assert frames[0]["type"] == "message" and frames[0]["message"]["content"] == "Is anyone there?"
    assert frames[-1]["message"]["status"] == "complete"
    assert "ack" not in [f["type"] for f in frames]  # acks go to the sender only


# --- public ids -----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_public_ids_are_random_tokens_not_sequences(http_world: World) -> None:
    owner = http_world.browser("customer_c2")
    ids = [owner.client.post("/c/new/").json()["id"] for _ in range(10)]
    assert len(set(ids)) == 10
    for public_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", public_id), public_id  # 128 random bits, URL-safe
    for first, second in itertools.pairwise(ids):
        same_position = sum(a == b for a, b in zip(first, second))
        assert same_position < 11, (first, second)  # consecutive ids share no structure


# --- an admin's persona preview: only that admin, on every door (issue 13) ------------------------
# A preview belongs to the admin who started it (docs/personas.md). Another admin or an agent who
# learns its id must see what an unknown id shows: 404 (403 where the door is staff-only and the
# principal is not staff; MFA setup for staff without MFA).
PREVIEW_DOORS = {
    # door: (path template, what the preview's own admin gets)
    "chat_page": ("/c/{id}/", 200),
    "transcript_view": ("/transcripts/{id}/", 200),
    "export_md": ("/c/{id}/export/md/", 200),
    "export_json": ("/c/{id}/export/json/", 200),
    "print": ("/c/{id}/print/", 200),
}
NOT_STAFF_DOOR = {"transcript_view": 403}


def _preview_world(http_world: World) -> tuple[Conversation, Browser]:
    from chat.preview import start_preview

    owner = Browser.logged_in(make_user("preview.owner@example.com", role=roles.ADMIN, mfa=True))
    version = http_world.persona.active_version
    preview = start_preview(version, owner.user)
    _, answer = services.begin_turn(preview, "Secret draft question", "seed-p", http_world.persona, "seed-worker")
    services.finish_message(answer.pk, content="Draft answer.", status=Message.Status.COMPLETE)
    return preview, owner


@pytest.mark.django_db
@pytest.mark.parametrize("door", list(PREVIEW_DOORS))
@pytest.mark.parametrize("principal", list(PRINCIPALS))
def test_preview_is_only_its_admins(http_world: World, principal: str, door: str) -> None:
    preview, owner = _preview_world(http_world)
    template, owner_status = PREVIEW_DOORS[door]
    path = template.format(id=preview.public_id)
    assert owner.client.get(path).status_code == owner_status
    response = http_world.browser(principal).client.get(path)
    if principal in NO_MFA_STAFF:
        expected: Any = MFA
    elif principal in ("agent_mfa", "admin_mfa"):
        expected = 404
    else:
        expected = NOT_STAFF_DOOR.get(door, 404)
    assert outcome(response) == expected
    assert b"Secret draft question" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("principal", ["agent_mfa", "admin_mfa"])
def test_preview_is_in_no_staff_list_or_bulk_export(http_world: World, principal: str) -> None:
    preview, owner = _preview_world(http_world)
    for browser in (http_world.browser(principal), owner):
        listed = browser.client.get("/transcripts/", {"q": "Secret draft"})
        assert listed.status_code == 200 and list(listed.context["conversations"]) == []
        bulk = browser.client.get("/transcripts/export.jsonl")
        assert bulk.status_code == 200
        assert b"Secret draft question" not in b"".join(bulk.streaming_content if bulk.streaming else [bulk.content])
    assert preview.public_id not in http_world.browser(principal).client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
async def test_preview_socket_refused_to_other_staff(ws_world: World, connect: Any, engine_sim: Any) -> None:
    preview, owner = await db(_preview_world_ws, ws_world)
    for principal in ("agent_mfa", "admin_mfa", "customer_c1", "guest_a"):
        browser = await db(ws_world.browser, principal)
        ws = await connect(browser, preview.public_id, expect_ready=False)
        assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": REFUSED}
    ws = await connect(owner, preview.public_id, expect_ready=False)
    ready = await ws.receive_json_from(timeout=5)
    assert ready["type"] == "ready" and ready["conversation"] == preview.public_id


def _preview_world_ws(ws_world: World) -> tuple[Conversation, Browser]:
    from chat.preview import start_preview

    owner = Browser.with_session(make_user("preview.owner@example.com", role=roles.ADMIN, mfa=True))
    version = ws_world.persona.active_version
    preview = start_preview(version, owner.user)
    return preview, owner
