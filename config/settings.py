"""Anyhour settings. Every value comes from the environment; docs/configuration.md lists them.

Embedded defaults (no variables set): SQLite, in-memory channel layer, local-memory cache, no
engine. Production switches: DATABASE_URL, REDIS_URL, ENGINE_URLS, DJANGO_DEBUG=0.
"""
from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def development_secret_key(path: Path) -> str:
    """DEBUG only: a random key made on first start and kept in ``path`` (owner-only), so
    sessions survive restarts. Several processes starting at once (Daphne and the worker)
    agree on one key: it is written to a temporary file and linked into place."""
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_text().strip()


# Off unless asked for: `make run` sets DJANGO_DEBUG=1; a production start that forgets the
# variable runs with production settings (and so needs a real DJANGO_SECRET_KEY).
DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set: generate one with "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'. "
            "For development set DJANGO_DEBUG=1 instead (make run does) and a key is generated in var/."
        )
    # No key in the repository, not even for development: a random one made once per checkout.
    SECRET_KEY = development_secret_key(Path(env("DJANGO_SECRET_KEY_FILE", str(BASE_DIR / "var" / "secret_key"))))

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "whitenoise.runserver_nostatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    # Apps in layer order, lowest first (docs/architecture.md): each may import only those above it here.
    "accounts",
    "personas",
    "knowledge",
    "chat",
    "analysis",
    "widgets",
    "transcripts",
    "desk",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "core.logs.RequestIdMiddleware",  # first: every log line of the request carries its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.RequireMFAMiddleware",
    "accounts.access.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL")
# Keep connections open between requests: websocket handlers reach the database from one worker
# thread many times a second, and reconnecting each time costs milliseconds of time to first token.
DATABASE_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 600)
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=DATABASE_CONN_MAX_AGE, conn_health_checks=True)
    }
else:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", str(BASE_DIR / "var" / "anyhour.sqlite3")),
            "CONN_MAX_AGE": DATABASE_CONN_MAX_AGE,
            # Several writers (streams checkpointing, requests) share one file: wait for the
            # lock instead of failing, take it up front, and let readers run beside a writer.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": env("SQLITE_TEST_PATH", str(BASE_DIR / "var" / "test.sqlite3"))},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and cache -----------------------------------------------------------
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL}],
                "prefix": env("CHANNELS_PREFIX", "anyhour"),
                "capacity": env_int("CHANNELS_CAPACITY", 1000),
                "expiry": 60,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_PREFIX", "anyhour"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth, sessions -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 30)
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"

# --- Accounts (django-allauth; docs/accounts.md) ---------------------------------------------
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Anyhour] "
# Scheme of links in account emails (verification, password reset).
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env("ACCOUNT_DEFAULT_HTTP_PROTOCOL", "http" if DEBUG else "https")
ACCOUNT_USER_DISPLAY = "accounts.selectors.display_name"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", "Anyhour")
# Roles whose members must set up two-factor authentication before they get that role's powers.
ACCOUNTS_MFA_REQUIRED_ROLES = env_list("ACCOUNTS_MFA_REQUIRED_ROLES", "agent,admin")
# Conversations of guests who never signed up are deleted this many days after their last message.
GUEST_RETENTION_DAYS = env_int("GUEST_RETENTION_DAYS", 30)
# Retention per kind of conversation (chat/retention.py, docs/privacy.md): days after the last
# activity; 0 keeps that kind forever. Purged by a task the worker schedules every
# RETENTION_INTERVAL_HOURS.
ACCOUNT_RETENTION_DAYS = env_int("ACCOUNT_RETENTION_DAYS", 0)
PREVIEW_RETENTION_DAYS = env_int("PREVIEW_RETENTION_DAYS", 30)
RETENTION_INTERVAL_HOURS = env_float("RETENTION_INTERVAL_HOURS", 24.0)

# Generic OpenID Connect single sign-on, switched on by setting OIDC_SERVER_URL and the client.
SOCIALACCOUNT_PROVIDERS: dict = {"openid_connect": {"APPS": []}}
if env("OIDC_SERVER_URL"):
    SOCIALACCOUNT_PROVIDERS["openid_connect"]["APPS"].append(
        {
            "provider_id": env("OIDC_PROVIDER_ID", "sso"),
            "name": env("OIDC_PROVIDER_NAME", "Single sign-on"),
            "client_id": env("OIDC_CLIENT_ID"),
            "secret": env("OIDC_CLIENT_SECRET"),
            "settings": {"server_url": env("OIDC_SERVER_URL")},
        }
    )
SOCIALACCOUNT_EMAIL_AUTHENTICATION = env_bool("OIDC_TRUST_EMAIL", False)

# --- Email ----------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Anyhour <no-reply@localhost>")

# --- i18n -----------------------------------------------------------------------------------
LANGUAGE_CODE = env("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "config.storage.StaticFilesStorage"},
}
WHITENOISE_MAX_AGE = 60 * 60 * 24 * 365 if not DEBUG else 0

# --- Security (production values when DEBUG is off) ------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Probes from the load balancer, the container runtime and Prometheus speak plain HTTP to the
# process itself (deploy/probe.py): they are not redirected to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Engine (vLLM's OpenAI-compatible API) ---------------------------------------------------
# Comma-separated base URLs ending in /v1, tried in order with health-checked failover.
ENGINE_URLS = env_list("ENGINE_URLS")
ENGINE_API_KEY = env("ENGINE_API_KEY")
ENGINE_MODEL = env("ENGINE_MODEL", "Qwen/Qwen2.5-7B-Instruct")
ENGINE_CONNECT_TIMEOUT = env_float("ENGINE_CONNECT_TIMEOUT", 3.0)
ENGINE_FIRST_TOKEN_TIMEOUT = env_float("ENGINE_FIRST_TOKEN_TIMEOUT", 60.0)
ENGINE_READ_TIMEOUT = env_float("ENGINE_READ_TIMEOUT", 30.0)
ENGINE_HEALTH_INTERVAL = env_float("ENGINE_HEALTH_INTERVAL", 10.0)
ENGINE_DOWN_COOLDOWN = env_float("ENGINE_DOWN_COOLDOWN", 5.0)

# --- Chat -----------------------------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = env_int("CHAT_MAX_MESSAGE_CHARS", 4000)
CHAT_MAX_FRAME_BYTES = env_int("CHAT_MAX_FRAME_BYTES", 64 * 1024)
CHAT_CONTEXT_TOKENS = env_int("CHAT_CONTEXT_TOKENS", 6000)
CHAT_COALESCE_MS = env_int("CHAT_COALESCE_MS", 30)
CHAT_CHECKPOINT_SECONDS = env_float("CHAT_CHECKPOINT_SECONDS", 1.0)
CHAT_STALE_STREAM_SECONDS = env_float("CHAT_STALE_STREAM_SECONDS", 15.0)
CHAT_FRAME_RATE = env_float("CHAT_FRAME_RATE", 10.0)
CHAT_FRAME_BURST = env_int("CHAT_FRAME_BURST", 30)
CHAT_FLOOD_CLOSE_AFTER = env_int("CHAT_FLOOD_CLOSE_AFTER", 50)
CHAT_SEND_PER_MINUTE = env_int("CHAT_SEND_PER_MINUTE", 20)
# Limits that a new cookie does not reset: messages a minute from one client address (several
# customers may share one, behind a company NAT), and answers streaming at once for one customer
# across their conversations. 0 turns either off.
CHAT_SEND_PER_MINUTE_PER_IP = env_int("CHAT_SEND_PER_MINUTE_PER_IP", 60)
CHAT_MAX_ANSWERS_PER_CUSTOMER = env_int("CHAT_MAX_ANSWERS_PER_CUSTOMER", 2)
CHAT_SESSION_RECHECK_SECONDS = env_float("CHAT_SESSION_RECHECK_SECONDS", 60.0)
# Sockets of agents and admins (who read other people's conversations) re-check their role this
# often: a revoke made where the channel layer cannot reach (another process on the embedded
# in-memory layer) still closes them within this time.
CHAT_STAFF_RECHECK_SECONDS = env_float("CHAT_STAFF_RECHECK_SECONDS", 5.0)
CHAT_NEW_CONVERSATIONS_PER_HOUR = env_int("CHAT_NEW_CONVERSATIONS_PER_HOUR", 60)
# Typing indicators (docs/desk.md): at most one relayed `typing` frame per socket per this many seconds.
CHAT_TYPING_INTERVAL = env_float("CHAT_TYPING_INTERVAL", 2.0)

# --- Website widget (docs/widget.md) ---------------------------------------------------------
# How long a widget visitor token (the anonymous visitor's identity inside the iframe) is valid.
WIDGET_VISITOR_TOKEN_MAX_AGE = env_int("WIDGET_VISITOR_TOKEN_MAX_AGE", 60 * 60 * 24 * 30)
# Refuse the widget page when its Referer names a site that is not on the widget's allow-list
# (defence in depth; CSP frame-ancestors is what the browser enforces).
WIDGET_CHECK_REFERER = env_bool("WIDGET_CHECK_REFERER", True)

# --- Knowledge base (docs/knowledge.md) -------------------------------------------------------
# Background work (ingestion) goes through Django's task API (django-tasks backport) with the
# database backend; `manage.py db_worker` runs it (`make run` starts one beside Daphne).
TASKS = {"default": {"BACKEND": env("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}
# Feedback analysis (docs/analysis.md): every customer message, in the background.
ANALYSIS_ENABLED = env_bool("ANALYSIS_ENABLED", True)
ANALYSIS_MODEL = env("ANALYSIS_MODEL")  # empty: ENGINE_MODEL
ANALYSIS_TEMPERATURE = env_float("ANALYSIS_TEMPERATURE", 0.0)
ANALYSIS_MAX_TOKENS = env_int("ANALYSIS_MAX_TOKENS", 200)
ANALYSIS_OUTPUT_ATTEMPTS = env_int("ANALYSIS_OUTPUT_ATTEMPTS", 3)
ANALYSIS_ENGINE_RETRY_SECONDS = env_float("ANALYSIS_ENGINE_RETRY_SECONDS", 30.0)
ANALYSIS_ENGINE_MAX_WAITS = env_int("ANALYSIS_ENGINE_MAX_WAITS", 10)
# Requests in flight to the engine during batch analysis: size it to vLLM's --max-num-seqs.
ANALYSIS_BATCH_CONCURRENCY = env_int("ANALYSIS_BATCH_CONCURRENCY", 8)
ANALYSIS_WEBHOOK_URL = env("ANALYSIS_WEBHOOK_URL")
ANALYSIS_WEBHOOK_SECRET = env("ANALYSIS_WEBHOOK_SECRET")
ANALYSIS_WEBHOOK_TIMEOUT = env_float("ANALYSIS_WEBHOOK_TIMEOUT", 10.0)
ANALYSIS_WEBHOOK_MAX_ATTEMPTS = env_int("ANALYSIS_WEBHOOK_MAX_ATTEMPTS", 6)
ANALYSIS_WEBHOOK_RETRY_SECONDS = env_float("ANALYSIS_WEBHOOK_RETRY_SECONDS", 30.0)
KNOWLEDGE_MAX_UPLOAD_BYTES = env_int("KNOWLEDGE_MAX_UPLOAD_BYTES", 10 * 1000 * 1000)
KNOWLEDGE_CHUNK_TOKENS = env_int("KNOWLEDGE_CHUNK_TOKENS", 300)
KNOWLEDGE_TOP_K = env_int("KNOWLEDGE_TOP_K", 5)
KNOWLEDGE_CONTEXT_TOKENS = env_int("KNOWLEDGE_CONTEXT_TOKENS", 1500)
# Abstain (offer a human) when no passage reaches either score: its article's coverage of the
# question (specificity-weighted share of the question's words it contains, 0..1), or the
# cosine similarity of the embeddings (calibrate per embedding model).
KNOWLEDGE_MIN_LEXICAL_SCORE = env_float("KNOWLEDGE_MIN_LEXICAL_SCORE", 0.25)
KNOWLEDGE_MIN_DENSE_SCORE = env_float("KNOWLEDGE_MIN_DENSE_SCORE", 0.5)
# Cite (and prompt with) only articles covering the question at least this share of the best
# one's coverage; quote an article without the engine only above this coverage (docs/knowledge.md).
KNOWLEDGE_CITE_RATIO = env_float("KNOWLEDGE_CITE_RATIO", 0.85)
KNOWLEDGE_QUOTE_MIN_SCORE = env_float("KNOWLEDGE_QUOTE_MIN_SCORE", 0.4)
# FAQ fast path: answer with a curated FAQ answer verbatim (no engine call) when the question and
# the FAQ's question cover each other at least this much (0..1; above 1 switches it off).
KNOWLEDGE_FAQ_MIN_MATCH = env_float("KNOWLEDGE_FAQ_MIN_MATCH", 0.9)
# Reuse the engine's answer to an identical first question (same persona version and knowledge
# version) for this many seconds; 0 switches the answer cache off (knowledge/answer_cache.py).
KNOWLEDGE_ANSWER_CACHE_SECONDS = env_int("KNOWLEDGE_ANSWER_CACHE_SECONDS", 3600)
# Served embedding model (e.g. BAAI/bge-m3 on vLLM); empty = lexical retrieval only.
KNOWLEDGE_EMBEDDING_MODEL = env("KNOWLEDGE_EMBEDDING_MODEL")
# Ask the engine to translate a question into the knowledge's other language before retrieval.
KNOWLEDGE_TRANSLATE_QUERIES = env_bool("KNOWLEDGE_TRANSLATE_QUERIES", True)
KNOWLEDGE_TRANSLATE_TIMEOUT = env_float("KNOWLEDGE_TRANSLATE_TIMEOUT", 5.0)
# ... but only when the best match in the question's own language covers less than this share of
# it (a translation is a whole engine call before the first token).
KNOWLEDGE_TRANSLATE_BELOW = env_float("KNOWLEDGE_TRANSLATE_BELOW", 0.5)
# Above this many chunks a process rebuilds its index in the background (serving the old one).
KNOWLEDGE_SYNC_REBUILD_CHUNKS = env_int("KNOWLEDGE_SYNC_REBUILD_CHUNKS", 2000)

# --- Personas (docs/personas.md) --------------------------------------------------------------
# Values of the {company} and {agent_hours} prompt variables.
ANYHOUR_COMPANY_NAME = env("ANYHOUR_COMPANY_NAME", "Lumio")
ANYHOUR_AGENT_HOURS = env("ANYHOUR_AGENT_HOURS", "every day 09:00-21:00 (China Standard Time)")
# How customers reach a human (shown when the assistant abstains or answers offline).
ANYHOUR_HUMAN_CONTACT = env("ANYHOUR_HUMAN_CONTACT", "support@lumio.example")
# Tokens a persona must leave free for the conversation itself: a version whose system prompt
# plus max_tokens plus this exceeds CHAT_CONTEXT_TOKENS is refused at save.
PERSONA_HISTORY_RESERVE_TOKENS = env_int("PERSONA_HISTORY_RESERVE_TOKENS", 1000)

# Personal data (core/pii.py: emails, phone numbers, ID-card and bank-card numbers) is masked in
# every prompt sent to the engine and in every log line (docs/privacy.md).
PII_MASK_PROMPTS = env_bool("PII_MASK_PROMPTS", True)
PII_MASK_LOGS = env_bool("PII_MASK_LOGS", True)
# Words never shown to a customer in an answer (chat/outputfilter.py): replaced by asterisks as
# the answer streams. Comma-separated, and/or a UTF-8 file with one word per line.
OUTPUT_FILTER_WORDS = env_list("OUTPUT_FILTER_WORDS")
OUTPUT_FILTER_FILE = env("OUTPUT_FILTER_FILE")
if OUTPUT_FILTER_FILE and not Path(OUTPUT_FILTER_FILE).is_file():
    raise ImproperlyConfigured(f"OUTPUT_FILTER_FILE: {OUTPUT_FILTER_FILE} is not a file")
# `json`: one JSON object per line with request, conversation and message ids (core/logs.py);
# `plain`: the same ids appended to a readable line.
LOG_FORMAT = env("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logs.ContextFilter"}},
    "formatters": {"plain": {"()": "core.logs.PlainFormatter"}, "json": {"()": "core.logs.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
# /readyz: time allowed per dependency check, and whether a missing or unreachable engine makes
# this node "not ready" (set 0 to keep web nodes in rotation while the engine is down).
READYZ_TIMEOUT = env_float("READYZ_TIMEOUT", 3.0)
READYZ_REQUIRE_ENGINE = env_bool("READYZ_REQUIRE_ENGINE", True)
# /metrics (Prometheus, core/metrics.py): answered only with this bearer token, or to clients in
# these networks (comma-separated CIDRs, e.g. 127.0.0.1/32,10.0.0.0/8); 404 for everyone else,
# and for everyone when both are empty (the default).
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network (write CIDRs such as 10.0.0.0/8)"
        ) from None
