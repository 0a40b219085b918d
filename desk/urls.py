from django.urls import path

from . import views

app_name = "desk"

urlpatterns = [
    path("", views.desk, name="desk"),
    path("panel/", views.panel, name="panel"),
    path("c/<str:conversation_id>/", views.conversation, name="conversation"),
    path("c/<str:conversation_id>/claim/", views.claim, name="claim"),
    path("c/<str:conversation_id>/hand-back/", views.hand_back, name="hand_back"),
    path("c/<str:conversation_id>/resolve/", views.resolve, name="resolve"),
]
