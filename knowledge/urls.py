from django.urls import path

from . import views

app_name = "knowledge"

# Pages (GET) for agents and admins; one URL per write (POST), admins only. The readable article
# page for customers, /knowledge/article/<id>/, is routed by chat (chat:help_article).
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create_collection, name="create_collection"),
    path("c/<int:pk>/", views.collection, name="collection"),
    path("c/<int:pk>/status.json", views.status, name="status"),
    path("c/<int:pk>/edit/", views.edit_collection, name="edit_collection"),
    path("c/<int:pk>/delete/", views.delete_collection, name="delete_collection"),
    path("c/<int:pk>/upload/", views.add_file, name="add_file"),
    path("c/<int:pk>/write/", views.add_text, name="add_text"),
    path("c/<int:pk>/faq/", views.add_faq, name="add_faq"),
    path("s/<int:pk>/", views.source, name="source"),
    path("s/<int:pk>/edit/", views.edit_source, name="edit_source"),
    path("s/<int:pk>/reingest/", views.reingest_source, name="reingest_source"),
    path("s/<int:pk>/delete/", views.delete_source, name="delete_source"),
]
