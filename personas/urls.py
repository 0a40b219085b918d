from django.urls import path

from . import views

app_name = "personas"

# The persona editor (docs/personas.md). The preview console's endpoint is the chat app's
# (chat:persona_preview): a preview is a conversation.
urlpatterns = [
    path("personas/", views.persona_list, name="list"),
    path("personas/new/", views.persona_new, name="new"),
    path("personas/import/", views.persona_import, name="import"),
    path("personas/export.<str:fmt>", views.persona_export, name="export"),
    path("personas/<slug:slug>/", views.persona_editor, name="editor"),
    path("personas/<slug:slug>/diff/", views.persona_diff, name="diff"),
    path("personas/<slug:slug>/versions/<int:number>/activate/", views.persona_activate, name="activate"),
]
