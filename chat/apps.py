from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_search_index(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    # A later migration that remakes chat_message on SQLite drops the FTS triggers: put them back.
    from django.db import connections

    from .search import ensure_sqlite_index

    ensure_sqlite_index(connections[using])


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = _("Chat")

    def ready(self) -> None:
        from . import signals  # imports models: only once the registry is ready

        post_migrate.connect(_ensure_search_index, sender=self, dispatch_uid="chat.search_index")
        signals.connect()
