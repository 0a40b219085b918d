"""ASGI entry point: HTTP through Django, websockets through Channels (origin-checked, session auth)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

# Budgets that cannot fit the engine's model are refused at start (knowledge/checks.py).
_budget_errors = [m for m in checks.run_checks(tags=["engine"]) if m.is_serious()]
if _budget_errors:
    raise ImproperlyConfigured("\n".join(str(m) for m in _budget_errors))

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

import chat.routing  # noqa: E402
import desk.routing  # noqa: E402
import widgets.routing  # noqa: E402
from chat.startup import install_shutdown_hook  # noqa: E402

install_shutdown_hook()

from knowledge.warmup import warm_up_in_background  # noqa: E402

warm_up_in_background()

WEBSOCKET_ROUTES = [
    *chat.routing.websocket_urlpatterns, *widgets.routing.websocket_urlpatterns, *desk.routing.websocket_urlpatterns,
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(WEBSOCKET_ROUTES))),
    }
)
