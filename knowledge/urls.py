from django.urls import path

from . import views

app_name = "knowledge"

urlpatterns = [
    path("", views.index, name="index"),
    path("c/<int:pk>/", views.collection, name="collection"),
    path("c/<int:pk>/status.json", views.status, name="status"),
    path("s/<int:pk>/", views.source, name="source"),
    path("article/<int:pk>/", views.article, name="article"),
]
