from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("", views.account, name="account"),
    path("delete/", views.delete_account, name="delete"),
    path("audit/", views.audit_log, name="audit"),
]
