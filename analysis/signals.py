"""Every saved customer message is queued for analysis; the worker sees it once the message's
transaction commits.

chat never imports this app: analysis listens to chat.Message's ``post_save`` (role ``user``,
created, not a preview conversation) and only enqueues (``services.queue_analysis``: with the
database task backend, the task row is written in the message's own transaction — no extra
commit in the turn; other backends enqueue on commit). The analysis itself never runs here.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from chat.models import Message

from . import services


@receiver(post_save, sender=Message, dispatch_uid="analysis.queue_customer_message")
def _queue_customer_message(sender: type[Message], instance: Message, created: bool, **kwargs: Any) -> None:
    if not created or instance.role != Message.Role.USER or not settings.ANALYSIS_ENABLED:
        return
    if not instance.content.strip() or kwargs.get("raw"):
        return
    services.queue_analysis(message=instance)
