"""Open websockets follow their session: logout, password change or reset, expiry, role changes.

Each ``Browser`` is one browser profile: its test client and its websocket tabs share one session
cookie, so logging out through the client is logging out the browser the tabs belong to.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
from io import StringIO
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.sessions.models import Session
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from chat import services
from chat.models import Message
from tests.accounts.support import PASSWORD, Browser, make_user
from tests.conftest import db, receive_until

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "Lighthouse-Orchard-93"
SESSION_ENDED = {"type": "websocket.close", "code": 4401}


async def closed_with(ws: Any) -> Any:
    return await ws.receive_output(timeout=5)


async def still_open(ws: Any) -> bool:
    """Nothing closed it, and it still answers."""
    assert await ws.receive_nothing(timeout=0.3)
    await ws.send_json_to({"type": "ping"})
    return (await ws.receive_json_from(timeout=5))["type"] == "pong"


async def can_send(ws: Any, text: str = "Still here?") -> bool:
    await ws.send_json_to({"type": "send", "text": text, "client_id": text})
    frames = await receive_until(ws, "ack")
    await receive_until(ws, "end")
    return frames[-1]["message"]["content"] == text


def logged_in(email: str, how: str = "force_login") -> tuple[Any, Browser, Any]:
    user = make_user(email)
    browser = Browser.logged_in(user) if how == "force_login" else Browser.with_session(user)
    return user, browser, services.create_conversation(browser.actor)


@pytest.mark.parametrize("how", ["force_login", "session_with_auth_keys"])
async def test_logout_closes_every_tab_of_that_browser_only(engine_sim: Any, connect: Any, how: str) -> None:
    user, laptop, conversation = await db(logged_in, "c@example.com", how)
    phone = await db(Browser.logged_in, user)
    tab1 = await connect(laptop, conversation.public_id)
    tab2 = await connect(laptop, conversation.public_id)
    phone_tab = await connect(phone, conversation.public_id)

    response = await db(laptop.client.post, "/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert await closed_with(tab1) == SESSION_ENDED
    assert await closed_with(tab2) == SESSION_ENDED
    # The same account in another browser is not logged out and keeps chatting.
    assert await still_open(phone_tab)
    assert await can_send(phone_tab)
    profile = await db(laptop.client.get, "/accounts/profile/")
    assert profile["Location"] == "/accounts/login/?next=/accounts/profile/"


async def test_a_logged_out_browser_cannot_reopen_the_conversation(engine_sim: Any, connect: Any) -> None:
    _, laptop, conversation = await db(logged_in, "c@example.com")
    await connect(laptop, conversation.public_id)
    await db(laptop.client.post, "/accounts/logout/")
    again = await connect(laptop, conversation.public_id, expect_ready=False)
    assert await again.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_password_change_closes_other_sessions_but_not_this_one(engine_sim: Any, connect: Any) -> None:
    user, laptop, conversation = await db(logged_in, "c@example.com")
    phone = await db(Browser.logged_in, user)
    laptop_tab = await connect(laptop, conversation.public_id)
    phone_tab = await connect(phone, conversation.public_id)

    response = await db(
        laptop.client.post,
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert await closed_with(phone_tab) == SESSION_ENDED
    # The browser that changed the password stays signed in, and its open tab keeps working
    # (its session key was rotated by the change; the socket follows it).
    assert await still_open(laptop_tab)
    await asyncio.sleep(0.2)  # the "new key" notice travels through the channel layer
    assert await can_send(laptop_tab)
    assert (await db(laptop.client.get, "/accounts/profile/")).status_code == 200
    # The other browser is logged out on its next page, too (Django's session hash check).
    assert (await db(phone.client.get, "/accounts/profile/"))["Location"].startswith("/accounts/login/")


async def test_password_reset_closes_all_the_users_sockets(engine_sim: Any, connect: Any) -> None:
    _, laptop, conversation = await db(logged_in, "c@example.com")
    tab = await connect(laptop, conversation.public_id)
    stranger = await db(Browser.guest)  # someone at another computer resets the password
    response = await db(stranger.client.post, "/accounts/password/reset/", {"email": "c@example.com"})
    assert response.status_code == 302
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body).group(1)
    form_page = await db(stranger.client.get, link, follow=True)
    response = await db(
        stranger.client.post, form_page.redirect_chain[-1][0], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/password/reset/key/done/"
    assert await closed_with(tab) == SESSION_ENDED


@pytest.mark.parametrize("how", ["deleted", "expired"])
async def test_a_dead_session_is_closed_even_if_the_socket_only_listens(
    engine_sim: Any, connect: Any, settings: Any, how: str
) -> None:
    settings.CHAT_SESSION_RECHECK_SECONDS = 0.2
    _, browser, conversation = await db(logged_in, "c@example.com")
    ws = await connect(browser, conversation.public_id)
    sessions = Session.objects.filter(session_key=browser.session_key)
    assert await still_open(ws)
    if how == "deleted":
        await db(sessions.delete)
    else:
        await db(sessions.update, expire_date=timezone.now() - dt.timedelta(seconds=1))
    assert await closed_with(ws) == SESSION_ENDED  # no frame sent: the periodic check closed it


@pytest.mark.parametrize("who", ["guest", "customer"])
@pytest.mark.parametrize("how", ["deleted", "expired"])
async def test_a_dead_session_cannot_keep_sending(engine_sim: Any, connect: Any, who: str, how: str) -> None:
    if who == "guest":
        browser = await db(Browser.guest)
        conversation = await db(lambda: services.create_conversation(browser.actor))
    else:
        _, browser, conversation = await db(logged_in, "c@example.com")
    ws = await connect(browser, conversation.public_id)
    sessions = Session.objects.filter(session_key=browser.session_key)
    if how == "deleted":
        await db(sessions.delete)
    else:
        await db(sessions.update, expire_date=timezone.now() - dt.timedelta(seconds=1))
    await ws.send_json_to({"type": "send", "text": "Hello?", "client_id": "m-1"})
    assert await closed_with(ws) == SESSION_ENDED
    assert not await db(Message.objects.filter(conversation=conversation).exists)


async def test_a_session_logged_in_as_someone_else_cannot_send_as_the_first_user(engine_sim: Any, connect: Any) -> None:
    _, browser, conversation = await db(logged_in, "c@example.com")
    ws = await connect(browser, conversation.public_id)
    other = await db(make_user, "other@example.com")
    # The same browser logs in as another account (the session now names another user).
    await db(browser.client.force_login, other)
    await ws.send_json_to({"type": "send", "text": "Hello?", "client_id": "m-1"})
    assert await closed_with(ws) == SESSION_ENDED


async def agent_reading_a_transcript(connect: Any) -> tuple[Any, Any, Any, Any, Any]:
    """A customer's conversation open in the customer's tab and in an agent's (with MFA) tab:
    ``agent, agent_browser, agent_tab, customer_tab, conversation``."""
    _, customer, conversation = await db(logged_in, "c@example.com")
    agent = await db(make_user, "agent@example.com", role="agent", mfa=True)
    agent_browser = await db(Browser.logged_in, agent)
    agent_tab = await connect(agent_browser, conversation.public_id)
    customer_tab = await connect(customer, conversation.public_id)
    return agent, agent_browser, agent_tab, customer_tab, conversation


async def test_revoking_a_role_closes_the_users_sockets(engine_sim: Any, connect: Any) -> None:
    _, agent_browser, agent_tab, customer_tab, conversation = await agent_reading_a_transcript(connect)

    await db(call_command, "role", "revoke", "agent@example.com", "agent", stdout=StringIO())
    assert await closed_with(agent_tab) == SESSION_ENDED
    assert await still_open(customer_tab)
    # Reconnecting, the former agent is a customer: the transcript is not theirs.
    again = await connect(agent_browser, conversation.public_id, expect_ready=False)
    assert await again.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_deactivating_a_user_closes_their_sockets(engine_sim: Any, connect: Any) -> None:
    agent, _, agent_tab, customer_tab, _ = await agent_reading_a_transcript(connect)

    def deactivate() -> None:
        agent.is_active = False
        agent.save(update_fields=["is_active"])

    await db(deactivate)
    assert await closed_with(agent_tab) == SESSION_ENDED
    assert await still_open(customer_tab)


async def test_granting_a_role_leaves_sockets_open(engine_sim: Any, connect: Any) -> None:
    _, browser, conversation = await db(logged_in, "c@example.com")
    ws = await connect(browser, conversation.public_id)
    await db(call_command, "role", "grant", "c@example.com", "agent", stdout=StringIO())
    assert await still_open(ws)


async def test_resetting_an_agents_authenticator_closes_their_sockets(engine_sim: Any, connect: Any) -> None:
    agent, agent_browser, agent_tab, customer_tab, conversation = await agent_reading_a_transcript(connect)
    admin = await db(Browser.logged_in, await db(make_user, "boss@example.com", role="admin", mfa=True))
    totp = await db(Authenticator.objects.get, user=agent, type=Authenticator.Type.TOTP)

    response = await db(admin.client.post, f"/admin/mfa/authenticator/{totp.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert await closed_with(agent_tab) == SESSION_ENDED
    assert await still_open(customer_tab)
    # Until a new authenticator is set up, the agent is a customer: the transcript is closed.
    again = await connect(agent_browser, conversation.public_id, expect_ready=False)
    assert await again.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_a_customer_turning_off_totp_keeps_chatting(engine_sim: Any, connect: Any) -> None:
    user, browser, conversation = await db(logged_in, "c@example.com")
    await db(lambda: TOTP.activate(user, generate_totp_secret()))
    ws = await connect(browser, conversation.public_id)
    await db(Authenticator.objects.filter(user=user).delete)
    assert await still_open(ws)


# --- the change is made in another process (issue 13) ---------------------------------------------
# `manage.py role revoke` run beside the embedded default publishes `session.ended` on its own
# in-memory channel layer, which no server socket listens to. The socket must find out by itself:
# staff sockets re-check their role in the database every CHAT_STAFF_RECHECK_SECONDS.
def manage_in_another_process(*args: str) -> str:
    """Run ``manage.py`` in a subprocess on the test database, with the embedded in-memory layer
    (REDIS_URL empty), so nothing it publishes can reach this process's sockets."""
    import os
    import subprocess
    import sys

    from tests.live import ROOT, test_database_env

    env = {**os.environ, **test_database_env(), "REDIS_URL": "",
           "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings_test")}
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


REMOVE_TOTP = (
    "from allauth.mfa.models import Authenticator; "
    "print(Authenticator.objects.filter(user__email='agent@example.com').delete()[0])"
)


@pytest.mark.parametrize("change", ["role revoke", "authenticator removed"])
async def test_a_change_made_in_another_process_closes_staff_sockets(
    engine_sim: Any, connect: Any, settings: Any, change: str
) -> None:
    settings.CHAT_STAFF_RECHECK_SECONDS = 0.3
    _, agent_browser, agent_tab, customer_tab, conversation = await agent_reading_a_transcript(connect)
    assert await still_open(agent_tab)
    if change == "role revoke":
        out = await asyncio.to_thread(manage_in_another_process, "role", "revoke", "agent@example.com", "agent")
    else:
        out = await asyncio.to_thread(manage_in_another_process, "shell", "-c", REMOVE_TOTP)
        assert out.strip().splitlines()[-1] == "1"  # one authenticator deleted
    assert await closed_with(agent_tab) == SESSION_ENDED  # within the re-check, no event needed
    assert await still_open(customer_tab)
    again = await connect(agent_browser, conversation.public_id, expect_ready=False)
    assert await again.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


async def test_a_revoked_agent_is_closed_at_their_next_write_frame(engine_sim: Any, connect: Any, settings: Any) -> None:
    settings.CHAT_STAFF_RECHECK_SECONDS = 3600  # no periodic check: the write frame re-checks
    _, _, agent_tab, customer_tab, _ = await agent_reading_a_transcript(connect)
    await asyncio.to_thread(manage_in_another_process, "role", "revoke", "agent@example.com", "agent")
    await agent_tab.send_json_to({"type": "stop"})
    assert await closed_with(agent_tab) == SESSION_ENDED
    assert await still_open(customer_tab)


async def test_customer_sockets_keep_the_long_recheck(engine_sim: Any, connect: Any, settings: Any) -> None:
    # The short interval is for staff only: customers' sockets do not add a query every few seconds.
    settings.CHAT_STAFF_RECHECK_SECONDS = 0.1
    settings.CHAT_SESSION_RECHECK_SECONDS = 3600
    _, browser, conversation = await db(logged_in, "c@example.com")
    ws = await connect(browser, conversation.public_id)
    await db(Session.objects.filter(session_key=browser.session_key).delete)
    assert await ws.receive_nothing(timeout=0.5)  # a customer's dead session waits for the long check
