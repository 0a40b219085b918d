from django.urls import path

from . import views

app_name = "analysis"

urlpatterns = [
    # Human review of a customer message's sentiment (docs/analysis.md).
    path("analysis/review/<str:conversation_id>/<int:seq>/", views.review_message, name="review"),
]
