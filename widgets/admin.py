from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Widget
from .tokens import embed_snippet


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
        if not obj.pk:
            return "—"
        return embed_snippet(obj, settings.STATIC_URL + "widget/anyhour-widget.js")
