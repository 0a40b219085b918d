from django.contrib import admin

from .models import Persona, PersonaVersion
from .services import SETTINGS_FIELDS


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    """Prompts and settings change only through versions (the app's persona editor, /personas/),
    so every change is versioned and audited; here they are read-only."""

    list_display = ["name", "slug", "model", "is_default", "active_version", "updated_at"]
    readonly_fields = [*SETTINGS_FIELDS, "active_version"]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(PersonaVersion)
class PersonaVersionAdmin(admin.ModelAdmin):
    """Versions are immutable history: viewable, never edited, added or deleted here."""

    list_display = ["persona", "number", "author_label", "source", "note", "created_at"]
    list_filter = ["persona", "source"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
