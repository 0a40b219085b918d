"""The analysis result is validated on arrival: exactly the schema, never a guess."""
from __future__ import annotations

import json

import pytest

from analysis.schema import InvalidResult, build_schema, parse_result

CATS = ["delivery", "quality", "other"]
GOOD = {"sentiment": "negative", "confidence": 0.8, "reason": "续航差", "keywords": ["续航"], "category": "quality"}


def test_a_valid_result_is_returned_as_is() -> None:
    assert parse_result(json.dumps(GOOD, ensure_ascii=False), CATS) == GOOD


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sentiment": "furious"}, "sentiment"),
        ({"confidence": 1.5}, "confidence"),
        ({"confidence": True}, "confidence"),
        ({"confidence": "0.9"}, "confidence"),
        ({"reason": "x" * 31}, "reason"),
        ({"keywords": "battery"}, "keywords"),
        ({"keywords": [1]}, "keywords"),
        ({"category": "weather"}, "category"),
        ({"extra": 1}, "unexpected"),
    ],
)
def test_each_violation_is_named(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidResult, match=message):
        parse_result(json.dumps({**GOOD, **change}), CATS)


def test_missing_fields_truncation_prose_and_non_objects_are_refused() -> None:
    partial = dict(GOOD)
    del partial["category"]
    with pytest.raises(InvalidResult, match="missing fields: category"):
        parse_result(json.dumps(partial), CATS)
    with pytest.raises(InvalidResult, match="truncated"):
        parse_result(json.dumps(GOOD), CATS, finish_reason="length")
    with pytest.raises(InvalidResult, match="not JSON"):
        parse_result("Sure! " + json.dumps(GOOD), CATS)
    with pytest.raises(InvalidResult, match="not a JSON object"):
        parse_result("[1, 2]", CATS)


def test_the_schema_names_the_categories_and_is_strict() -> None:
    schema = build_schema(CATS)
    assert schema["properties"]["category"]["enum"] == CATS
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(GOOD)
    with pytest.raises(ValueError):
        build_schema([])
