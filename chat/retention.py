"""Retention: conversations are deleted a set number of days after their last activity, per kind.

Contract:
- Kinds: ``guest`` (no account: chat page and website widget visitors), ``account`` (a signed-in
  customer's, or a staff member's own), ``preview`` (an admin's persona preview). Each has its
  own period in days (``RETENTION_DAYS``, from GUEST_RETENTION_DAYS, ACCOUNT_RETENTION_DAYS,
  PREVIEW_RETENTION_DAYS); 0 keeps that kind forever.
- ``purge_expired`` deletes every conversation of a kind whose last activity (``updated_at``) is
  older than its period, with its messages, except one with an answer still streaming. It writes
  one audit event (``retention.purged``, the counts per kind): the audit log is kept, it only
  says how many were deleted, never what they said.
- It runs as a background task the worker schedules itself (chat/tasks.py), not by hand.
"""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.services import audit

from .models import Conversation, Message

GUEST, ACCOUNT, PREVIEW = "guest", "account", "preview"
KINDS = (GUEST, ACCOUNT, PREVIEW)
_KIND_FILTER = {
    GUEST: Q(owner__isnull=True, is_preview=False),
    ACCOUNT: Q(owner__isnull=False, is_preview=False),
    PREVIEW: Q(is_preview=True),
}
BATCH = 500  # conversations deleted per transaction: a large first purge does not lock for long


def retention_days() -> dict[str, int]:
    return {
        GUEST: settings.GUEST_RETENTION_DAYS,
        ACCOUNT: settings.ACCOUNT_RETENTION_DAYS,
        PREVIEW: settings.PREVIEW_RETENTION_DAYS,
    }


def expired(kind: str, days: int, now: dt.datetime | None = None) -> Q:
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    return _KIND_FILTER[kind] & Q(updated_at__lt=cutoff)


def purge_expired(*, now: dt.datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Delete the expired conversations of every kind; the number per kind (0 for a kind kept
    forever)."""
    counts: dict[str, int] = {}
    for kind, days in retention_days().items():
        if days <= 0:
            counts[kind] = 0
            continue
        streaming = Message.objects.filter(status=Message.Status.STREAMING).values("conversation_id")
        queryset = Conversation.objects.filter(expired(kind, days, now)).exclude(pk__in=streaming)
        if dry_run:
            counts[kind] = queryset.count()
            continue
        deleted = 0
        while True:
            ids = list(queryset.values_list("pk", flat=True)[:BATCH])
            if not ids:
                break
            with transaction.atomic():
                Message.objects.filter(conversation_id__in=ids).delete()
                deleted += Conversation.objects.filter(pk__in=ids).delete()[1].get(Conversation._meta.label, 0)
        counts[kind] = deleted
    if not dry_run:
        audit(None, "retention.purged", "conversations", **counts, days=retention_days())
    return counts
