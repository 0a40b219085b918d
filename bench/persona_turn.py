"""What persona versioning adds to the start of every turn (before the engine call), measured.

Per turn the consumer now reads the active version fresh (one query), fills in the prompt's
template variables and appends the language line. This times those steps against the old path
(the persona object cached on the socket, the raw system prompt) on a throwaway SQLite database
(or DATABASE_URL), with the demo persona and a 20-turn history.

    python -m bench.persona_turn [--rounds 2000]

Prints a table of microseconds per call (median and p95 of --rounds calls).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from personas.services import ensure_default_persona


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="anyhour-bench-")
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = os.path.join(tmp, "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts.access import Actor
    from chat import selectors, services
    from chat.models import Message
    from chat.prompt import build_prompt
    from personas import prompt as persona_prompt

    persona = ensure_default_persona()
    actor = Actor(user_id=None, guest_id="bench")
    conversation = services.create_conversation(actor, persona)
    for i in range(10):
        question = f"问题 {i}: my earbuds will not pair, what now?"
        _, answer = services.begin_turn(conversation, question, f"c{i}", persona, "w")
        services.finish_message(answer.pk, content="Try these steps:\n1. Reset.\n2. Pair again." * 3,
                                status=Message.Status.COMPLETE)
    before_seq = selectors.last_seq(conversation) + 1
    conversation.refresh_from_db()

    rows = [
        ("old: persona_for (cached object)", lambda: selectors.persona_for(conversation)),
        ("new: turn_version (fresh query)", lambda: selectors.turn_version(conversation)),
        ("old: raw system prompt", lambda: persona.system_prompt),
        ("new: system_prompt (variables + language line)",
         lambda: persona_prompt.system_prompt(persona.active_version, persona.name, "我的耳机连不上")),
        ("new: build_prompt (20 turns, rendered)",
         lambda: build_prompt(conversation, persona=persona, version=persona.active_version, before_seq=before_seq)),
    ]
    print(f"persona work per turn, {args.rounds} calls each, {django.db.connection.vendor}")
    print(f"{'step':<50} {'median µs':>10} {'p95 µs':>10}")
    for name, fn in rows:
        median, p95 = timed(fn, args.rounds)
        print(f"{name:<50} {median:>10.1f} {p95:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
