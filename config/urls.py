from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import include, path, reverse
from django.views.i18n import JavaScriptCatalog

from core.metrics import metrics_view

from . import health


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin's own login form has no rate limit and no second factor, so it is never shown:
    strangers log in through allauth (rate limits, MFA), staff go to the index, other signed-in
    users are refused. (Wrapping it in ``login_required`` is not enough: the form would still
    accept an admin's password from any signed-in customer, skipping the second factor.)"""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if admin.site.has_permission(request):
        return HttpResponseRedirect(reverse("admin:index"))
    raise PermissionDenied


admin.site.login = admin_login  # type: ignore[method-assign]  # replaced on purpose, see above

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus (docs/operations.md): 404 unless METRICS_TOKEN or METRICS_ALLOWED_NETWORKS allows.
    path("metrics", metrics_view, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("admin/", admin.site.urls),
    # Before accounts.urls: the data export at accounts/profile/export.zip is the transcripts app's.
    path("", include("transcripts.urls")),
    path("accounts/profile/", include("accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("knowledge/", include("knowledge.urls")),
    path("desk/", include("desk.urls")),
    path("", include("analysis.urls")),
    path("", include("personas.urls")),
    path("", include("widgets.urls")),
    path("", include("chat.urls")),
]
