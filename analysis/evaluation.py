"""Scoring the analysis against a labelled set (pure): sentiment accuracy and macro-F1, per
language, escalation recall and false alarms; rendered as a Markdown table with the rows
``sentiment`` and ``escalation`` (``manage.py analysis_eval``, docs/analysis.md)."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .schema import SENTIMENTS


@dataclass(frozen=True)
class Item:
    id: str
    lang: str
    text: str
    label: str
    escalate: bool


def load(path: Path) -> list[Item]:
    """Items of a JSONL file (``id, lang, text, label, escalate``); ``ValueError`` names the bad line."""
    items = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                item = Item(str(row["id"]), str(row.get("lang", "")), str(row["text"]), str(row["label"]),
                            bool(row["escalate"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: {exc!r}") from exc
            if item.label not in SENTIMENTS:
                raise ValueError(f"{path}:{number}: label {item.label!r} is not one of {', '.join(SENTIMENTS)}")
            items.append(item)
    return items


def macro_f1(gold: Sequence[str], predicted: Sequence[str | None], labels: Iterable[str] = SENTIMENTS) -> float:
    scores = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def score(items: Sequence[Item], sentiments: Sequence[str | None] | None, escalations: Sequence[bool]) -> dict[str, Any]:
    """``sentiments``: predicted label per item (None = analysis failed, counted wrong), or None when not run."""
    langs = sorted({item.lang for item in items})
    out: dict[str, Any] = {"n": len(items), "languages": langs}
    if sentiments is not None:
        gold = [item.label for item in items]
        out["sentiment"] = {
            "accuracy": sum(g == p for g, p in zip(gold, sentiments, strict=True)) / len(items),
            "macro_f1": macro_f1(gold, sentiments),
            "failed": sum(p is None for p in sentiments),
            "per_language": {
                lang: sum(item.label == p for item, p in zip(items, sentiments, strict=True) if item.lang == lang)
                / sum(item.lang == lang for item in items)
                for lang in langs
            },
        }
    positives = [i for i, item in enumerate(items) if item.escalate]
    negatives = [i for i, item in enumerate(items) if not item.escalate]
    hits = [i for i in positives if escalations[i]]
    alarms = [i for i in negatives if escalations[i]]
    out["escalation"] = {
        "accuracy": sum(item.escalate == e for item, e in zip(items, escalations, strict=True)) / len(items),
        "recall": len(hits) / len(positives) if positives else None,
        "positives": len(positives),
        "false_alarms": len(alarms),
        "negatives": len(negatives),
        "missed": [items[i].id for i in positives if not escalations[i]],
        "false_alarm_ids": [items[i].id for i in alarms],
        "per_language": {
            lang: _recall([escalations[i] for i in positives if items[i].lang == lang]) for lang in langs
        },
    }
    return out


def _recall(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def markdown(result: dict[str, Any]) -> str:
    langs = result["languages"]
    head = ["row", "n", "accuracy", "macro-F1", "recall", "false alarms", *(f"{lang}" for lang in langs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    s = result.get("sentiment")
    if s is None:
        lines.append("| sentiment | — | not run (--rules-only) | — | — | — |" + " — |" * len(langs))
    else:
        per = [_pct(s["per_language"][lang]) for lang in langs]
        lines.append(f"| sentiment | {result['n']} | {_pct(s['accuracy'])} | {s['macro_f1']:.3f} | — | — | " + " | ".join(per) + " |")
    e = result["escalation"]
    per = [_pct(e["per_language"][lang]) for lang in langs]
    lines.append(
        f"| escalation | {result['n']} | {_pct(e['accuracy'])} | — | {_pct(e['recall'])} ({e['positives']} to escalate) "
        f"| {e['false_alarms']} of {e['negatives']} | " + " | ".join(per) + " |"
    )
    notes = ["", "Per-language columns: sentiment accuracy; escalation recall (— where none to escalate)."]
    if s is not None and s["failed"]:
        notes.append(f"Analyses failed (counted wrong): {s['failed']}.")
    if e["missed"]:
        notes.append(f"Missed escalations: {', '.join(e['missed'])}.")
    if e["false_alarm_ids"]:
        notes.append(f"False alarms: {', '.join(e['false_alarm_ids'])}.")
    return "\n".join(lines + notes) + "\n"
