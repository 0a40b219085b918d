"""Ratings (chat/ratings.py): thumbs on finished answers with a comment, 1–5 satisfaction on a
resolved conversation; through the service and over the socket (customers only)."""
from __future__ import annotations

import pytest

from accounts import roles
from chat import handoff, ratings
from chat.models import Conversation, Message
from tests.accounts.support import Browser
from tests.conftest import db, receive_until
from tests.factories import ConversationFactory, MessageFactory, UserFactory, turn


@pytest.mark.django_db
def test_rate_answers_and_satisfaction() -> None:
    conversation = ConversationFactory.create()
    question, answer = turn(conversation, "Warranty?", "Two years.")
    streaming = MessageFactory.create(conversation=conversation, role="assistant", status="streaming")
    rated = ratings.rate_answer(conversation=conversation, seq=answer.seq, rating=-1, comment="  too short " + "x" * 2000)
    assert rated.rating == -1 and rated.rating_comment.startswith("too short") and len(rated.rating_comment) == 1000
    assert ratings.rate_answer(conversation=conversation, seq=answer.seq, rating=None).rating_comment == ""
    for seq in (question.seq, streaming.seq, 99):  # not an answer, not finished, unknown
        with pytest.raises(ratings.NotRateable):
            ratings.rate_answer(conversation=conversation, seq=seq, rating=1)
    other = ConversationFactory.create()
    with pytest.raises(ratings.NotRateable):  # another conversation's seq
        ratings.rate_answer(conversation=other, seq=answer.seq, rating=1)

    with pytest.raises(ratings.NotRateable):  # not resolved yet
        ratings.rate_conversation(conversation=conversation, score=5)
    agent = UserFactory.create(role=roles.AGENT, mfa=True)
    handoff.resolve(agent=agent, conversation=conversation)
    assert ratings.rate_conversation(conversation=conversation, score=4).satisfaction == 4
    with pytest.raises(ValueError):
        ratings.rate_conversation(conversation=conversation, score=6)
    # Reopened and resolved again: asked again.
    handoff.on_customer_message(Conversation.objects.get(pk=conversation.pk))
    handoff.resolve(agent=agent, conversation=conversation)
    assert Conversation.objects.get(pk=conversation.pk).satisfaction is None


@pytest.mark.django_db(transaction=True)
async def test_customer_rates_over_the_socket_and_staff_cannot(engine_sim, new_chat, connect):
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "How do I pair my earbuds?", "client_id": "c-1"})
    await receive_until(ws, "end")
    await ws.send_json_to({"type": "rate", "seq": 2, "value": "up", "comment": "clear"})
    rated = (await receive_until(ws, "message"))[-1]["message"]
    assert rated["seq"] == 2 and rated["rating"] == 1 and "rating_comment" not in rated
    await ws.send_json_to({"type": "rate", "seq": 1, "value": "down"})
    assert (await receive_until(ws, "error"))[-1]["code"] == "not_rateable"
    await ws.send_json_to({"type": "rate", "seq": 2, "value": "meh"})
    assert (await receive_until(ws, "error"))[-1]["code"] == "bad_frame"
    await ws.send_json_to({"type": "satisfaction", "score": 5})
    assert (await receive_until(ws, "error"))[-1]["code"] == "not_rateable"

    agent = await db(UserFactory.create, role=roles.AGENT, mfa=True)
    await db(handoff.resolve, agent=agent, conversation=conversation)
    assert (await receive_until(ws, "conversation"))[-1]["state"] == "resolved"
    await ws.send_json_to({"type": "satisfaction", "score": 5})
    assert (await receive_until(ws, "conversation"))[-1]["satisfaction"] == 5

    staff = await connect(await db(Browser.with_session, agent), conversation.public_id)
    assert staff.ready["state"]["satisfaction"] == 5
    for frame in ({"type": "rate", "seq": 2, "value": "down"}, {"type": "satisfaction", "score": 1}):
        await staff.send_json_to(frame)
        assert (await receive_until(staff, "error"))[-1]["code"] == "forbidden"
    saved = await db(lambda: (Message.objects.get(conversation=conversation, seq=2).rating,
                              Conversation.objects.get(pk=conversation.pk).satisfaction))
    assert saved == (1, 5)
