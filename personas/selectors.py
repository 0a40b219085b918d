"""Read-side queries of personas."""
from __future__ import annotations

from .models import Persona


def default_persona() -> Persona:
    persona = Persona.objects.filter(is_default=True).first() or Persona.objects.order_by("pk").first()
    if persona is None:
        raise Persona.DoesNotExist("No persona exists; run migrations")
    return persona
