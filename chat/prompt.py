"""The engine prompt of one answer, built by one function: the persona version's system prompt
(template variables filled in), then the knowledge block, then as much recent history as fits
``CHAT_CONTEXT_TOKENS``. Every answer (first, regenerated, preview) is prompted through here, so
this is where personal data is masked before the engine (``PII_MASK_PROMPTS``)."""
from __future__ import annotations

from django.conf import settings

from core import pii
from engine.tokens import fit_history
from personas import prompt as persona_prompt
from personas.models import Persona, PersonaVersion

from .models import Conversation, Message

# Only the newest turns can fit the budget: fetch a bounded window, not the whole transcript.
HISTORY_WINDOW = 200


def engine_text(text: str) -> str:
    """``text`` as it may be sent to the engine (prompts, and the retrieval hints' embedding and
    translation calls): personal data masked unless ``PII_MASK_PROMPTS`` is off."""
    return pii.mask(text) if settings.PII_MASK_PROMPTS else text


def build_prompt(
    conversation: Conversation,
    *,
    persona: Persona,
    version: PersonaVersion | None,
    before_seq: int,
    knowledge_block: str = "",
) -> list[dict[str, str]]:
    """The messages for the answer with sequence ``before_seq``. ``knowledge_block`` (the
    retrieved passages, knowledge.grounding) follows the system prompt and counts against the
    budget; the history that fits comes after."""
    rows = (
        conversation.messages.filter(seq__lt=before_seq, superseded=False)
        .exclude(role=Message.Role.SYSTEM)
        .exclude(role=Message.Role.ASSISTANT, content="")
        .order_by("-seq")
        .values_list("role", "content")[:HISTORY_WINDOW]
    )
    # Personal data never reaches the engine (core/pii.py, docs/privacy.md): the customer's turns
    # and the answers (which may have quoted them) are masked here, the one way into a prompt.
    turns = [
        {"role": "user" if role == Message.Role.USER else "assistant", "content": engine_text(content)}
        for role, content in reversed(rows)
    ]
    last_customer = next((t["content"] for t in reversed(turns) if t["role"] == "user"), "")
    system = persona_prompt.system_prompt(version or persona, persona.name, last_customer)
    return fit_history(system + knowledge_block, turns, settings.CHAT_CONTEXT_TOKENS)
