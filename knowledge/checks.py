"""Start-up checks of the prompt budgets against the engine (``manage.py check``, and the ASGI
application refuses to start on an error: config/asgi.py).

Contract: ``budget_check`` returns Django check messages. Errors name the numbers:
- the knowledge block must leave room for the persona and the conversation:
  KNOWLEDGE_CONTEXT_TOKENS + PERSONA_HISTORY_RESERVE_TOKENS ≤ CHAT_CONTEXT_TOKENS;
- with an engine configured and answering, CHAT_CONTEXT_TOKENS (prompt and reply together) must
  fit the served model's context, read from the engine (``GET /v1/models``' ``max_model_len`` on
  vLLM). An engine that does not answer or does not report it is a warning (it may start later).

Why: a budget larger than the model's context is refused by vLLM only when a long conversation
reaches it, as a context-overflow failure in front of a customer; the numbers are known at start.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from engine.client import model_limits

TAG = "engine"


@checks.register(TAG)
def budget_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    knowledge, reserve, context = (settings.KNOWLEDGE_CONTEXT_TOKENS, settings.PERSONA_HISTORY_RESERVE_TOKENS,
                                   settings.CHAT_CONTEXT_TOKENS)
    if knowledge + reserve > context:
        messages.append(checks.Error(
            f"KNOWLEDGE_CONTEXT_TOKENS ({knowledge}) + PERSONA_HISTORY_RESERVE_TOKENS ({reserve}) = "
            f"{knowledge + reserve} exceeds CHAT_CONTEXT_TOKENS ({context}).",
            hint="Lower KNOWLEDGE_CONTEXT_TOKENS or raise CHAT_CONTEXT_TOKENS.", id="anyhour.E101",
        ))
    if not settings.ENGINE_URLS:
        return messages
    limits = model_limits(settings.ENGINE_URLS, api_key=settings.ENGINE_API_KEY,
                          timeout=min(settings.ENGINE_CONNECT_TIMEOUT, 3.0))
    model = settings.ENGINE_MODEL
    if model not in limits:
        messages.append(checks.Warning(
            f"Could not read the context length of {model!r} from the engine ({', '.join(settings.ENGINE_URLS)}): "
            f"{'no engine answered GET /models' if not limits else 'it serves ' + ', '.join(sorted(limits))}.",
            hint="CHAT_CONTEXT_TOKENS is not checked against the model.", id="anyhour.W102",
        ))
        return messages
    if context > limits[model]:
        messages.append(checks.Error(
            f"CHAT_CONTEXT_TOKENS ({context}) exceeds the context length of {model!r} served by the engine "
            f"(max_model_len {limits[model]}).",
            hint=f"Set CHAT_CONTEXT_TOKENS to at most {limits[model]}, or serve the model with a longer "
                 "--max-model-len.", id="anyhour.E103",
        ))
    return messages
