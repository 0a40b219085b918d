"""Escalation rules: the seeded defaults fire on threats and stay quiet on the traps."""
from __future__ import annotations

import pytest

from analysis import selectors, services
from analysis.rules import compile_rule, find_matches
from engine.language import detect_language

FIRES = [
    ("我要去法院起诉你们", "legal-zh", "起诉"),
    ("再不退款我就去12315投诉", "legal-zh", "12315"),
    ("已经收到你们的律师函了吗？我发的", "legal-zh", "律师函"),
    ("I'm filing a chargeback tomorrow.", "legal-en", "chargeback"),
    ("My lawyer will contact you.", "legal-en", "lawyer"),
    ("我已经报警了", "police", "报警"),
    ("我要发微博曝光你们", "media", "曝光"),
    ("耳机充电的时候冒烟了", "safety", "冒烟"),
    ("There is a burning smell from the hub", "safety", "burning smell"),
    ("我真的不想活了", "self-harm", "不想活"),
    ("Sometimes I just want to die", "self-harm", "want to die"),
]

TRAPS = [
    "放心，我不会起诉的，只是想问问进度",
    "烟雾报警器什么时候到货？",
    "I'm not a lawyer, but isn't that against the rules?",
    "I won't file a chargeback, just fix it please",
    "我没报警，就是想知道快递去哪了",
    "相机的自动曝光怎么关？",
    "Does the hub work with my smoke detector?",
    "这款耳机卖得太火爆了",
    "订单号 121315 查一下",
    "快递等得我快死了哈哈",
]


def _fired(text: str) -> list[tuple[str, list[str]]]:
    language = detect_language(text)
    out = []
    for rule, compiled in selectors.keyword_rules():
        matched = find_matches(compiled, text, language)
        if matched:
            out.append((rule.name, matched))
    return out


@pytest.mark.django_db
@pytest.mark.parametrize(("text", "rule", "word"), FIRES)
def test_default_rules_fire_on_threats(text: str, rule: str, word: str) -> None:
    fired = dict(_fired(text))
    assert word in fired.get(rule, []), fired


@pytest.mark.django_db
@pytest.mark.parametrize("text", TRAPS)
def test_default_rules_ignore_negations_product_names_and_hyperbole(text: str) -> None:
    assert _fired(text) == []


def test_a_rule_restricted_to_a_language_ignores_other_languages() -> None:
    rule = compile_rule(name="x", patterns="sue", language="en")
    assert find_matches(rule, "I will sue", "en") == ["sue"]
    assert find_matches(rule, "I will sue", "zh") == []
    assert find_matches(rule, "this is an issue", "en") == []


def test_a_bad_regular_expression_is_reported_with_its_line() -> None:
    with pytest.raises(ValueError, match="re:\\(unclosed"):
        services.try_rule(patterns="ok\nre:(unclosed", samples=["x"])


def test_try_rule_shows_each_sample_with_its_matches() -> None:
    results = services.try_rule(patterns="起诉\nre:law(yer|suit)", exceptions="", samples=["起诉你", "a lawsuit", "不会起诉", "hi"])
    assert results == [("起诉你", ["起诉"]), ("a lawsuit", ["lawsuit"]), ("不会起诉", []), ("hi", [])]
