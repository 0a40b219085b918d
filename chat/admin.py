from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Conversation, Message, Persona, PersonaVersion, Widget
from .personas import SETTINGS_FIELDS


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


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = [
        "seq", "role", "status", "content", "model", "persona_version", "ttft_ms", "duration_ms", "finish_reason",
        "error_code",
    ]
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["public_id", "title", "owner", "status", "updated_at"]
    list_filter = ["status", "is_preview"]
    search_fields = ["public_id", "title"]
    readonly_fields = ["public_id", "guest_id", "created_at", "updated_at"]
    inlines = [MessageInline]


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):
    """Website widgets (docs/widget.md); /widgets/ lists them with their copy-paste snippets."""

    list_display = ["name", "persona", "is_active", "public_key", "updated_at"]
    list_filter = ["is_active", "persona"]
    search_fields = ["name", "public_key", "allowed_origins"]
    readonly_fields = ["public_key", "snippet", "created_at", "updated_at"]
    fields = ["name", "persona", "title", "colour", "greeting", "position", "allowed_origins", "is_active",
              "public_key", "snippet", "created_at", "updated_at"]

    @admin.display(description=_("embed snippet"))
    def snippet(self, obj: Widget) -> str:
        from django.conf import settings

        from .widgets import embed_snippet

        if not obj.pk:
            return "—"
        return embed_snippet(obj, settings.STATIC_URL + "widget/anyhour-widget.js")
