"""The analysis result's JSON schema, and its validation on arrival (Django-free, pure).

The same schema goes to the engine (``response_format`` json_schema, strict) and checks what
comes back: structured decoding makes vLLM produce it, but a ``max_tokens`` cut, another
OpenAI-compatible server or a misconfigured engine can still return something else, and a stored
label must never be a guess. ``parse_result`` accepts exactly one JSON object that satisfies the
schema — no extraction from surrounding prose, no defaults for missing fields.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

SENTIMENTS = ("positive", "neutral", "negative")
REASON_MAX = 30
KEYWORDS_MAX = 8
KEYWORD_MAX_CHARS = 40
SCHEMA_NAME = "feedback_analysis"


class InvalidResult(ValueError):
    """The engine's output is not a valid analysis (the message says why)."""


def build_schema(categories: Sequence[str]) -> dict[str, Any]:
    if not categories:
        raise ValueError("At least one category is needed")
    return {
        "type": "object",
        "properties": {
            "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reason": {"type": "string", "maxLength": REASON_MAX},
            "keywords": {
                "type": "array",
                "items": {"type": "string", "maxLength": KEYWORD_MAX_CHARS},
                "maxItems": KEYWORDS_MAX,
            },
            "category": {"type": "string", "enum": list(categories)},
        },
        "required": ["sentiment", "confidence", "reason", "keywords", "category"],
        "additionalProperties": False,
    }


def parse_result(raw: str, categories: Sequence[str], *, finish_reason: str = "stop") -> dict[str, Any]:
    """The validated result, or ``InvalidResult`` naming the first problem."""
    if finish_reason == "length":
        raise InvalidResult("output truncated (finish_reason=length)")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidResult(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidResult("not a JSON object")
    required = {"sentiment", "confidence", "reason", "keywords", "category"}
    missing = required - data.keys()
    if missing:
        raise InvalidResult(f"missing fields: {', '.join(sorted(missing))}")
    extra = data.keys() - required
    if extra:
        raise InvalidResult(f"unexpected fields: {', '.join(sorted(extra))}")
    if data["sentiment"] not in SENTIMENTS:
        raise InvalidResult(f"sentiment {data['sentiment']!r} is not one of {', '.join(SENTIMENTS)}")
    confidence = data["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        raise InvalidResult(f"confidence {confidence!r} is not a number from 0 to 1")
    reason = data["reason"]
    if not isinstance(reason, str) or len(reason) > REASON_MAX:
        raise InvalidResult(f"reason must be a string of at most {REASON_MAX} characters")
    keywords = data["keywords"]
    if (
        not isinstance(keywords, list)
        or len(keywords) > KEYWORDS_MAX
        or not all(isinstance(k, str) and len(k) <= KEYWORD_MAX_CHARS for k in keywords)
    ):
        raise InvalidResult(f"keywords must be a list of at most {KEYWORDS_MAX} short strings")
    if data["category"] not in categories:
        raise InvalidResult(f"category {data['category']!r} is not one of the configured categories")
    return {
        "sentiment": data["sentiment"],
        "confidence": float(confidence),
        "reason": reason,
        "keywords": keywords,
        "category": data["category"],
    }
