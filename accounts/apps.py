from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self) -> None:
        from . import signals

        # post_migrate also runs after test-database flushes, so the role groups always exist.
        post_migrate.connect(signals.ensure_roles_after_migrate, sender=self, dispatch_uid="accounts.roles")
        signals.connect()
