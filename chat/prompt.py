"""The engine prompt of one answer, built by one function: the persona version's system prompt
(template variables filled in), then the knowledge block, then as much recent history as fits
``CHAT_CONTEXT_TOKENS``. Every answer (first, regenerated, preview) is prompted through here."""
from __future__ import annotations

from django.conf import settings

from engine.tokens import fit_history
from personas import prompt as persona_prompt
from personas.models import Persona, PersonaVersion

from .models import Conversation, Message

# Only the newest turns can fit the budget: fetch a bounded window, not the whole transcript.
HISTORY_WINDOW = 200


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
    turns = [
        {"role": "user" if role == Message.Role.USER else "assistant", "content": content}
        for role, content in reversed(rows)
    ]
    last_customer = next((t["content"] for t in reversed(turns) if t["role"] == "user"), "")
    system = persona_prompt.system_prompt(version or persona, persona.name, last_customer)
    return fit_history(system + knowledge_block, turns, settings.CHAT_CONTEXT_TOKENS)
