"""A customer downloads all their conversations as a zip from the account page."""
from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from django.test import Client

from accounts.models import AuditEvent
from chat import services
from chat.models import Message
from personas.services import ensure_default_persona
from tests.accounts.support import FAST_HASHERS, Browser, make_user
from transcripts import exports

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


def seeded(actor: Any, question: str, answer: str) -> Any:
    persona = ensure_default_persona()
    conversation = services.create_conversation(actor)
    _, reply = services.begin_turn(conversation, question, "q1", persona, "w")
    services.finish_message(reply.pk, content=answer, status=Message.Status.COMPLETE)
    conversation.refresh_from_db()
    return conversation


def download(client: Client) -> zipfile.ZipFile:
    response = client.get("/accounts/profile/export.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="anyhour-export-')
    assert response["Cache-Control"] == "private, no-store"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_zip_holds_every_own_conversation_as_json_and_markdown() -> None:
    owner = Browser.logged_in(make_user("c1@example.com"))
    stranger = Browser.logged_in(make_user("c2@example.com"))
    first = seeded(owner.actor, "我想退货", "可以，请在订单页面申请。")
    second = seeded(owner.actor, "Where is my **parcel**?", "It ships today.")
    foreign = seeded(stranger.actor, "Secret order 4711", "Noted.")
    guest = Browser.guest()
    seeded(guest.actor, "guest question", "guest answer")

    archive = download(owner.client)
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    assert "anyhour-export/README.md" in names
    json_files = [n for n in names if n.endswith(".json")]
    assert len(json_files) == 2 and len([n for n in names if n.endswith(".md")]) == 3  # 2 + README
    parsed = {}
    for name in json_files:
        document = exports.conversation_from_dict(json.loads(archive.read(name)))
        parsed[document.id] = document
        assert archive.read(name.removesuffix(".json") + ".md").decode().startswith(f"# {document.title}")
    assert set(parsed) == {first.public_id, second.public_id}
    for conversation in (first, second):
        saved = list(conversation.messages.order_by("seq").values_list("seq", "role", "content", "status"))
        assert [(m.seq, m.role, m.content, m.status) for m in parsed[conversation.public_id].messages] == saved
    everything = b"".join(archive.read(n) for n in names).decode()
    assert foreign.public_id not in everything and "Secret order" not in everything
    assert "guest question" not in everything
    readme = archive.read("anyhour-export/README.md").decode()
    assert "- Conversations: 2" in readme and "我想退货" in readme and first.public_id in readme
    assert AuditEvent.objects.filter(action="account.export", actor=owner.user, details__conversations=2).exists()


def test_empty_account_gets_a_zip_with_only_the_readme() -> None:
    archive = download(Browser.logged_in(make_user("new@example.com")).client)
    assert archive.namelist() == ["anyhour-export/README.md"]
    assert "- Conversations: 0" in archive.read("anyhour-export/README.md").decode()


def test_guests_are_sent_to_login() -> None:
    response = Browser.guest().client.get("/accounts/profile/export.zip")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/profile/export.zip"


def test_account_page_links_to_the_download() -> None:
    body = Browser.logged_in(make_user("c1@example.com")).client.get("/accounts/profile/").content.decode()
    assert 'href="/accounts/profile/export.zip"' in body and "Download your conversations" in body


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_zip_is_streamed_from_its_file() -> None:
    # Django would read a sync iterator whole into memory under ASGI; the view hands it an
    # async one, chunk by chunk from the temporary file.
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    user = await sync_to_async(make_user)("c1@example.com")
    from accounts.access import Actor

    await sync_to_async(seeded)(Actor(user_id=user.pk, guest_id=""), "我想退货", "好的")
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.get("/accounts/profile/export.zip")
    assert response.status_code == 200 and response.streaming and response.is_async
    body = b"".join([chunk async for chunk in response.streaming_content])
    assert int(response["Content-Length"]) == len(body)
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert len([n for n in names if n.endswith(".json")]) == 1
