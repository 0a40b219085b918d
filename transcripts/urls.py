from django.urls import path

from . import export_views, views

app_name = "transcripts"

urlpatterns = [
    # A customer's exports of one conversation, and of all their data (docs/export.md).
    path("c/<str:conversation_id>/export/<str:fmt>/", export_views.export_conversation, name="export"),
    path("c/<str:conversation_id>/print/", export_views.print_conversation, name="print"),
    path("accounts/profile/export.zip", export_views.export_account_data, name="account_export"),
    # The transcript browser for agents and admins (docs/transcripts.md).
    path("transcripts/", views.transcript_list, name="list"),
    path("transcripts/<str:conversation_id>/", views.transcript_detail, name="detail"),
    path("transcripts/export.<str:fmt>", export_views.export_transcripts, name="export_bulk"),
]
