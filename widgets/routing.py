from django.urls import path

from .consumers import WidgetChatConsumer

websocket_urlpatterns = [
    path("ws/widget/<str:key>/<str:conversation_id>/", WidgetChatConsumer.as_asgi()),
]
