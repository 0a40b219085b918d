"""knowledge.intents: every intent in several languages, and the labelled dev set."""
import json
from pathlib import Path

import pytest

from knowledge.intents import Intent, detect_intent

EVAL = Path(__file__).resolve().parents[2] / "knowledge" / "eval"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("你好", Intent.GREETING), ("Hello!", Intent.GREETING), ("hola", Intent.GREETING), ("bonjour", Intent.GREETING),
        ("guten Tag", Intent.GREETING), ("こんにちは", Intent.GREETING),
        ("thanks, that helped!", Intent.THANKS), ("谢谢", Intent.THANKS), ("muchas gracias", Intent.THANKS),
        ("merci beaucoup", Intent.THANKS), ("vielen Dank!", Intent.THANKS),
        ("how are you?", Intent.SMALL_TALK), ("你是机器人吗？", Intent.SMALL_TALK), ("ok", Intent.SMALL_TALK),
        ("", Intent.SMALL_TALK), ("👍", Intent.SMALL_TALK),
        ("I want to talk to a human", Intent.HANDOFF), ("转人工", Intent.HANDOFF),
        ("quiero hablar con una persona real", Intent.HANDOFF), ("je veux parler à un humain", Intent.HANDOFF),
        ("ich möchte mit einem Menschen sprechen", Intent.HANDOFF),
        ("worst service ever", Intent.COMPLAINT), ("垃圾客服，气死我了", Intent.COMPLAINT),
        ("hi, how long does shipping take?", Intent.QUESTION), ("人工客服几点下班啊", Intent.QUESTION),
        ("What hours can I talk to a real person in English?", Intent.QUESTION),
        ("I hate waiting, where is my parcel?", Intent.QUESTION), ("where is my order LM20261125001", Intent.QUESTION),
    ],
)
def test_intent(text, intent):
    assert detect_intent(text) == intent


def test_intent_dev_set_and_questions_stay_questions():
    rows = [json.loads(line) for line in (EVAL / "intents-dev.jsonl").read_text().splitlines() if line]
    assert {row["lang"] for row in rows} >= {"zh", "en", "es", "fr", "de"}
    correct = sum(detect_intent(row["text"]) == row["intent"] for row in rows)
    assert correct / len(rows) >= 0.95
    for name in ("questions-dev.jsonl", "questions-dev2.jsonl"):
        path = EVAL / name
        if path.exists():
            for line in path.read_text().splitlines():
                if line:
                    assert detect_intent(json.loads(line)["question"]) == Intent.QUESTION
