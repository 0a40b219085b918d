"""Django-side plumbing shared by every app and owned by none: the engine client built from
settings (``core.engine``) and cache-backed rate limits (``core.ratelimit``). No models, and it
imports no app: every app may use it."""
