from django.urls import path

from . import views

app_name = "widgets"

# Per-persona website widgets (docs/widget.md).
urlpatterns = [
    path("widget/<str:key>/", views.widget_frame, name="frame"),
    path("widget/<str:key>/config", views.widget_config, name="config"),
    path("widget/<str:key>/new/", views.widget_new_conversation, name="new"),
    path("widgets/", views.widget_list, name="list"),
]
