"""Write-side rules: turns, regeneration, checkpoints and recovery of dead streams."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.access import Actor
from chat import services, startup
from chat.models import Message
from chat.prompt import build_prompt
from personas.services import ensure_default_persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation():
    return services.create_conversation(Actor(user_id=None, guest_id="guest-1"))


@pytest.fixture
def persona():
    return ensure_default_persona()


def test_a_turn_saves_question_and_streaming_answer_together(conversation, persona):
    user, answer = services.begin_turn(conversation, "hello", "c1", persona, "w1")
    assert (user.seq, user.role, user.status) == (1, "user", "complete")
    assert (answer.seq, answer.role, answer.status, answer.worker) == (2, "assistant", "streaming", "w1")
    with pytest.raises(services.Busy):
        services.begin_turn(conversation, "again", "c2", persona, "w1")
    assert services.begin_turn(conversation, "hello", "c1", persona, "w1") == (user, None)


def test_checkpoint_then_finish(conversation, persona):
    _, answer = services.begin_turn(conversation, "hello", "c1", persona, "w1")
    before = timezone.now()
    services.checkpoint_messages({answer.pk: "Hel"})
    answer.refresh_from_db()
    assert answer.content == "Hel" and answer.status == "streaming"
    assert before <= answer.checkpoint_at <= timezone.now()  # stored as a comparable timestamp
    assert Message.objects.filter(pk=answer.pk, checkpoint_at__gte=before).exists()
    services.finish_message(answer.pk, content="Hello", status="complete", finish_reason="stop",
                            usage={"prompt_tokens": 9, "completion_tokens": 2}, ttft_ms=80, duration_ms=300)
    answer.refresh_from_db()
    assert (answer.content, answer.prompt_tokens, answer.completion_tokens, answer.ttft_ms) == ("Hello", 9, 2, 80)
    services.checkpoint_messages({answer.pk: "late"})  # a late checkpoint never overwrites the end
    answer.refresh_from_db()
    assert answer.content == "Hello"


def test_prompt_excludes_superseded_and_empty_failed_answers(conversation, persona):
    _, first = services.begin_turn(conversation, "question", "c1", persona, "w")
    services.finish_message(first.pk, content="first answer", status="complete")
    second = services.begin_regeneration(conversation, persona, "w")
    prompt = build_prompt(conversation, persona=persona, version=None, before_seq=second.seq)
    assert [m["content"] for m in prompt[1:]] == ["question"]
    services.finish_message(second.pk, content="", status="failed", error_code="engine_unavailable")
    _, third = services.begin_turn(conversation, "next", "c2", persona, "w")
    assert [m["content"] for m in build_prompt(conversation, persona=persona, version=None, before_seq=third.seq)[1:]] == ["question", "next"]


@pytest.fixture
def layer(settings):
    """Switch the channel layer backend for one test."""
    from channels.layers import channel_layers

    def use(backend: str, **config: object) -> None:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": config}}
        channel_layers.backends.clear()

    yield use
    channel_layers.backends.clear()


def test_startup_recovery_single_process_marks_every_stream(conversation, persona, layer):
    layer("channels.layers.InMemoryChannelLayer")
    _, answer = services.begin_turn(conversation, "hello", "c1", persona, "w1")
    startup.reset()
    startup.ensure_started()
    answer.refresh_from_db()
    assert (answer.status, answer.error_code) == ("interrupted", "interrupted")


def test_shared_layer_recovery_only_marks_stale_streams(conversation, persona, layer):
    layer("channels_redis.core.RedisChannelLayer", hosts=["redis://127.0.0.1:1"])
    _, live = services.begin_turn(conversation, "hello", "c1", persona, "w1")
    other = services.create_conversation(Actor(user_id=None, guest_id="guest-2"))
    _, dead = services.begin_turn(other, "hello", "c1", persona, "w2")
    Message.objects.filter(pk=dead.pk).update(checkpoint_at=timezone.now() - dt.timedelta(minutes=1))
    assert startup.recover_interrupted_answers() == 1
    live.refresh_from_db(), dead.refresh_from_db()
    assert live.status == "streaming" and dead.status == "interrupted"
