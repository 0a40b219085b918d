from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Conversation, Message, Persona, Widget


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "model", "is_default", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["seq", "role", "status", "content", "model", "ttft_ms", "duration_ms", "finish_reason", "error_code"]
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["public_id", "title", "owner", "status", "updated_at"]
    list_filter = ["status"]
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
