from django.urls import path

from . import views

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
    # Per-persona entry points (docs/widget.md).
    path("p/<slug:persona_slug>/", views.chat_page, name="entry"),
    # The persona editor's preview console: a conversation pinned to a draft version.
    path("personas/<slug:slug>/versions/<int:number>/preview/", views.persona_preview, name="persona_preview"),
]
