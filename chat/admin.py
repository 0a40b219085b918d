from django.contrib import admin

from .models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = (
        "seq", "role", "status", "content", "model", "persona_version", "ttft_ms", "duration_ms", "finish_reason",
        "error_code",
    )
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["public_id", "title", "owner", "status", "updated_at"]
    list_filter = ["status", "is_preview"]
    search_fields = ["public_id", "title"]
    readonly_fields = ["public_id", "guest_id", "created_at", "updated_at"]
    inlines = [MessageInline]
