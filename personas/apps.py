from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _ensure_default_persona(sender: AppConfig, using: str = "default", **kwargs: object) -> None:
    from .services import ensure_default_persona  # models are not importable before ready()

    ensure_default_persona()


class PersonasConfig(AppConfig):
    name = "personas"
    verbose_name = _("Personas")

    def ready(self) -> None:
        # post_migrate also runs after test-database flushes, so the persona is always there.
        post_migrate.connect(_ensure_default_persona, sender=self, dispatch_uid="personas.default_persona")
