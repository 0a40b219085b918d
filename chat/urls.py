from django.urls import path

from . import export_views, persona_views, transcript_views, views, widget_views

app_name = "chat"

urlpatterns = [
    path("", views.chat_page, name="home"),
    path("c/new/", views.new_conversation, name="new"),
    path("c/<str:conversation_id>/", views.chat_page, name="conversation"),
    path("c/<str:conversation_id>/rename/", views.rename_conversation, name="rename"),
    path("c/<str:conversation_id>/archive/", views.archive_conversation, name="archive"),
    path("c/<str:conversation_id>/unarchive/", views.unarchive_conversation, name="unarchive"),
    path("c/<str:conversation_id>/delete/", views.delete_conversation, name="delete"),
    path("history/", views.history, name="history"),
    path("history/search/", views.history_search, name="history_search"),
    # A cited help article, readable by whoever the answer was for (docs/knowledge.md).
    path("knowledge/article/<int:pk>/", views.help_article, name="help_article"),
    # Exports (docs/export.md).
    path("c/<str:conversation_id>/export/<str:fmt>/", export_views.export_conversation, name="export"),
    path("c/<str:conversation_id>/print/", export_views.print_conversation, name="print"),
    # The transcript browser for agents and admins (docs/transcripts.md).
    path("transcripts/", transcript_views.transcript_list, name="transcripts"),
    path("transcripts/<str:conversation_id>/", transcript_views.transcript_detail, name="transcript"),
    path("transcripts/export.<str:fmt>", export_views.export_transcripts, name="export_transcripts"),
    # Per-persona entry points and the website widget (docs/widget.md).
    path("p/<slug:persona_slug>/", views.chat_page, name="entry"),
    path("widget/<str:key>/", widget_views.widget_frame, name="widget_frame"),
    path("widget/<str:key>/config", widget_views.widget_config, name="widget_config"),
    path("widget/<str:key>/new/", widget_views.widget_new_conversation, name="widget_new"),
    path("widgets/", widget_views.widget_list, name="widget_list"),
    # The persona editor (docs/personas.md).
    path("personas/", persona_views.persona_list, name="personas"),
    path("personas/new/", persona_views.persona_new, name="persona_new"),
    path("personas/import/", persona_views.persona_import, name="persona_import"),
    path("personas/export.<str:fmt>", persona_views.persona_export, name="persona_export"),
    path("personas/<slug:slug>/", persona_views.persona_editor, name="persona"),
    path("personas/<slug:slug>/diff/", persona_views.persona_diff, name="persona_diff"),
    path("personas/<slug:slug>/versions/<int:number>/activate/", persona_views.persona_activate,
         name="persona_activate"),
    path("personas/<slug:slug>/versions/<int:number>/preview/", persona_views.persona_preview,
         name="persona_preview"),
]

