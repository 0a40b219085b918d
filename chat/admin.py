from django.contrib import admin

from .models import Conversation, Message, Persona


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
