from django.urls import path

from . import views

app_name = "chat"

urlpatterns = [
    path("", views.chat_page, name="home"),
    path("c/new/", views.new_conversation, name="new"),
    path("c/<str:conversation_id>/", views.chat_page, name="conversation"),
]
