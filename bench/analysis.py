"""Batch analysis throughput against the engine simulator at concurrency 1, 8 and 32.

Run by hand:  .venv/bin/python -m bench.analysis [--messages 256] [--tps 100] [--first-token-ms 50]

Uses its own SQLite file (var/bench-analysis.sqlite3) with N distinct customer messages (no cache
hits), runs ``analysis.services.analyse_backlog`` at each concurrency from a clean slate, and
prints a Markdown table: messages/s, the engine-bound floor (N × mean request time ÷ concurrency,
i.e. what a perfect client would take on this simulator) and the rest, which is Anyhour's share
(Python, validation, SQLite writes, chunk barriers).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ["ANALYSIS_ENABLED"] = "0"  # the bench fills the backlog itself; no per-message tasks
DB = ROOT / "var" / "bench-analysis.sqlite3"
os.environ["DATABASE_URL"] = f"sqlite:///{DB}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=256)
    parser.add_argument("--tps", type=float, default=100.0, help="simulated tokens/s per request")
    parser.add_argument("--first-token-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()

    DB.parent.mkdir(exist_ok=True)
    DB.unlink(missing_ok=True)
    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings
    from django.core.management import call_command

    from analysis import services
    from analysis.models import CachedResult, ConversationSentiment, MessageAnalysis
    from chat.models import Conversation, Message
    from testsupport.engine_sim import EngineSimulator

    call_command("migrate", verbosity=0)
    conversation = Conversation.objects.create(guest_id="bench")
    words = ["delivery", "quality", "price", "great", "terrible", "refund", "物流", "满意", "失望", "包装"]
    Message.objects.bulk_create(
        Message(conversation=conversation, seq=i + 1, role=Message.Role.USER,
                content=f"message {i}: {words[i % len(words)]} {words[(i * 7) % len(words)]} order #{i}")
        for i in range(args.messages)
    )
    rows = []
    with EngineSimulator(first_token_delay=args.first_token_ms / 1000, tokens_per_second=args.tps) as sim:
        settings.ENGINE_URLS = [sim.base_url]
        settings.ENGINE_MODEL = sim.config["model"]
        from core.engine import reset_engine

        reset_engine()
        for concurrency in args.concurrency:
            MessageAnalysis.objects.all().delete()
            CachedResult.objects.all().delete()
            ConversationSentiment.objects.all().delete()
            sim.reset()
            stats = services.analyse_backlog(concurrency=concurrency)
            assert stats["analysed"] == args.messages, stats
            mean_ms = stats["engine_ms"] / stats["engine_requests"]
            floor = args.messages * mean_ms / 1000 / concurrency
            rows.append(
                f"| {concurrency} | {args.messages} | {stats['seconds']:.2f} | {args.messages / stats['seconds']:.1f} "
                f"| {mean_ms:.0f} | {floor:.2f} | {stats['seconds'] - floor:.2f} "
                f"({(stats['seconds'] - floor) / stats['seconds']:.0%}) |"
            )
    print(f"Simulator: {args.first_token_ms:.0f} ms first token, {args.tps:.0f} tokens/s per request; "
          f"{args.messages} distinct messages, SQLite.\n")
    print("| concurrency | messages | wall s | messages/s | mean engine request ms | engine-bound floor s | Anyhour s (share) |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
