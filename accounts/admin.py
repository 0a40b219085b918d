from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor_label", "action", "target"]
    readonly_fields = ["created_at", "actor", "actor_label", "action", "target", "details"]

    # The audit log is append-only, written by the application.
    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
