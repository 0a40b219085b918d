"""Retention (chat/retention.py, chat/tasks.py): conversations purged per kind after their
period, by a task the real worker schedules and runs; the audit log keeps only the counts."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from accounts import roles
from accounts.access import Actor
from accounts.models import AuditEvent
from chat import retention, services
from chat.models import Conversation, Message
from chat.preview import start_preview
from chat.tasks import _task_path, schedule_retention
from personas.services import ensure_default_persona
from tests.accounts.support import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def conversation(kind: str, idle_days: float, text: str = "My phone is 13812345678") -> Conversation:
    persona = ensure_default_persona()
    if kind == retention.PREVIEW:
        admin = make_user(f"admin{Conversation.objects.count()}@example.com", role=roles.ADMIN, mfa=True)
        made = start_preview(persona.active_version, admin)
    elif kind == retention.ACCOUNT:
        user = make_user(f"c{Conversation.objects.count()}@example.com")
        made = services.create_conversation(Actor(user_id=user.pk, guest_id=""))
    else:
        made = services.create_conversation(Actor(user_id=None, guest_id=f"g{Conversation.objects.count()}"))
    _, answer = services.begin_turn(made, text, f"c-{made.pk}", persona, "seed")
    services.finish_message(answer.pk, content="Noted.", status=Message.Status.COMPLETE)
    Conversation.objects.filter(pk=made.pk).update(updated_at=timezone.now() - dt.timedelta(days=idle_days))
    return made


def alive(*conversations: Conversation) -> list[bool]:
    return [Conversation.objects.filter(pk=c.pk).exists() for c in conversations]


def test_each_kind_is_purged_after_its_own_period(settings: Any) -> None:
    settings.GUEST_RETENTION_DAYS, settings.ACCOUNT_RETENTION_DAYS, settings.PREVIEW_RETENTION_DAYS = 30, 365, 7
    old_guest, new_guest = conversation("guest", 31), conversation("guest", 29)
    old_account, new_account = conversation("account", 366), conversation("account", 100)
    old_preview, new_preview = conversation("preview", 8), conversation("preview", 6)
    assert retention.purge_expired(dry_run=True) == {"guest": 1, "account": 1, "preview": 1}
    assert alive(old_guest, old_account, old_preview) == [True, True, True]  # a dry run deletes nothing

    assert retention.purge_expired() == {"guest": 1, "account": 1, "preview": 1}
    assert alive(old_guest, new_guest, old_account, new_account, old_preview, new_preview) == [
        False, True, False, True, False, True,
    ]
    assert not Message.objects.filter(conversation_id__in=[old_guest.pk, old_account.pk, old_preview.pk]).exists()
    # The audit log keeps that it happened and how many, nothing of what was said.
    event = AuditEvent.objects.get(action="retention.purged")
    assert event.details == {"guest": 1, "account": 1, "preview": 1,
                             "days": {"guest": 30, "account": 365, "preview": 7}}
    assert "13812345678" not in str(event.details) + event.target


def test_zero_keeps_a_kind_forever_and_a_streaming_answer_is_never_cut(settings: Any) -> None:
    settings.GUEST_RETENTION_DAYS, settings.ACCOUNT_RETENTION_DAYS = 1, 0
    ancient_account = conversation("account", 5000)
    streaming = conversation("guest", 10)
    Message.objects.filter(conversation=streaming, role=Message.Role.ASSISTANT).update(status=Message.Status.STREAMING)
    finished = conversation("guest", 10)
    assert retention.purge_expired() == {"guest": 1, "account": 0, "preview": 0}
    assert alive(ancient_account, streaming, finished) == [True, True, False]


def test_the_accounts_audit_events_survive_the_purge(settings: Any) -> None:
    settings.ACCOUNT_RETENTION_DAYS = 30
    old = conversation("account", 31)
    AuditEvent.objects.create(actor_label="system", action="transcript.view", target=old.public_id)
    retention.purge_expired()
    assert AuditEvent.objects.filter(target=old.public_id).exists()


def _waiting() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=_task_path(), status=TaskResultStatus.READY))


def test_the_worker_schedules_runs_and_reschedules_the_purge(settings: Any) -> None:
    settings.GUEST_RETENTION_DAYS, settings.RETENTION_INTERVAL_HOURS = 30, 24
    old_guest, new_guest = conversation("guest", 40), conversation("guest", 1)
    assert _waiting() == []
    # A long-running worker (not --batch) makes sure a run is waiting, then works: the run is due
    # now, so it purges and exits after one task (--max-tasks 1).
    call_command("db_worker", "--no-startup-delay", "--no-reload", "--interval", "0.05", "--max-tasks", "1",
                 verbosity=0)
    assert alive(old_guest, new_guest) == [False, True]
    done = DBTaskResult.objects.get(task_path=_task_path(), status=TaskResultStatus.SUCCESSFUL)
    assert done.return_value == {"guest": 1, "account": 0, "preview": 0}
    # It scheduled its next run a day later, and only one.
    (following,) = _waiting()
    assert dt.timedelta(hours=23) < following.run_after - timezone.now() <= dt.timedelta(hours=24)
    assert schedule_retention() is False and len(_waiting()) == 1
    # A batch worker (tests, one-off runs) does not run it early, nor schedule another.
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    assert len(_waiting()) == 1 and DBTaskResult.objects.filter(task_path=_task_path()).count() == 2
