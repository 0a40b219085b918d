from django.urls import path

from .consumers import ChatConsumer
from .widget_consumers import WidgetChatConsumer

websocket_urlpatterns = [
    path("ws/chat/<str:conversation_id>/", ChatConsumer.as_asgi()),
    path("ws/widget/<str:key>/<str:conversation_id>/", WidgetChatConsumer.as_asgi()),
]
