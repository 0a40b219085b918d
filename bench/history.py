"""History benchmark: bulk transcript export throughput and memory, transcript search latency.

Run by hand, once per database (each run uses a dedicated database, never the app's)::

    .venv/bin/python -m bench.history --db sqlite       # var/bench/history.sqlite3
    .venv/bin/python -m bench.history --db postgres     # postgres://postgres@127.0.0.1:5432/anyhour_bench

Options: --messages N (default 100,000, ~10 per conversation), --regenerate (drop and rebuild the
data), --runs N (search repetitions per query, default 30), --database-url URL (another
PostgreSQL database whose name contains "bench").

Data: synthetic support conversations, half Chinese and half English (some mixed), built from
phrase templates with random order numbers, products and amounts (no external data set): five
turns per conversation, answers with model, token counts, TTFT and duration; ~3% of answers
failed, stopped or interrupted. It is generated once and reused (a marker row says how many
messages it holds).

Export: the real streaming path of ``GET /transcripts/export.<fmt>`` (``transcripts.messages_matching``
-> ``exports.iter_jsonl``/``iter_csv`` -> ``exports.batched``), all messages, no filters, consumed
in a fresh subprocess per format: messages/s and MB/s over the whole export (median of 3 runs),
peak RSS of that process (``ru_maxrss``, includes Django itself; baseline RSS after setup shown
too) and the peak of Python allocations during one export under ``tracemalloc`` (a separate,
slower run).

Search: ``transcripts.search_transcripts(agent, query)`` (first page of 50 conversations with
snippets, newest first), --runs timed calls per query after one warm-up; p50/p95 nearest-rank.
Queries: 退货 (2 characters: below the trigram size), 发票抬头, "refund", "tracking number",
"damaged on arrival".
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/anyhour_bench"
SQLITE_FILE = ROOT / "var" / "bench" / "history.sqlite3"
QUERIES = ("退货", "发票抬头", "refund", "tracking number", "damaged on arrival")
MARKER_SLUG = "bench-history"


def configure(db: str, database_url: str | None) -> None:
    """Point Django at the benchmark database (before django.setup())."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("DATABASE_URL", None)
    if db == "postgres":
        url = database_url or DEFAULT_PG
        name = url.rsplit("/", 1)[-1]
        if "bench" not in name:
            sys.exit(f"refusing to use {name!r}: the benchmark database's name must contain 'bench'")
        _create_pg_database(url, name)
        os.environ["DATABASE_URL"] = url
    else:
        SQLITE_FILE.parent.mkdir(parents=True, exist_ok=True)
        os.environ["SQLITE_PATH"] = str(SQLITE_FILE)
    sys.path.insert(0, str(ROOT))


def _create_pg_database(url: str, name: str) -> None:
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


# --- synthetic data ---------------------------------------------------------------------------------
ZH_PRODUCTS = ["蓝牙耳机", "空气炸锅", "电动牙刷", "保温杯", "扫地机器人", "充电宝", "运动鞋", "羽绒服", "咖啡机", "机械键盘"]
EN_PRODUCTS = ["bluetooth headphones", "air fryer", "electric toothbrush", "travel mug", "robot vacuum",
               "power bank", "running shoes", "down jacket", "coffee machine", "mechanical keyboard"]
ZH_QUESTIONS = [
    "我上周买的{p}还没发货，订单号{o}，请帮我查一下。",
    "收到的{p}有划痕，我想退货，需要怎么操作？",
    "请问{p}支持七天无理由退货吗？",
    "我需要开发票，发票抬头写公司名称可以吗？税号是{t}。",
    "订单{o}的发票抬头写错了，能重新开吗？",
    "{p}充不进电，是不是质量问题？",
    "快递显示已签收，但我没有收到{p}。",
    "优惠券为什么不能用？订单金额是{a}元。",
    "能不能改一下收货地址？订单号{o}。",
    "退款什么时候到账？已经等了五天了。",
]
ZH_ANSWERS = [
    "您好，已为您查询订单{o}，{p}预计明天发出，发货后会短信通知您。",
    "非常抱歉给您带来不便。您可以在“我的订单”中申请退货，选择“商品损坏”，上传照片后我们会在24小时内审核。",
    "是的，{p}支持七天无理由退货，请保持商品包装完整。退货运费由我们承担。",
    "可以的。请在订单详情页点击“申请发票”，填写发票抬头和税号{t}，电子发票会在3个工作日内发送到您的邮箱。",
    "发票抬头填写错误可以作废重开：请在订单{o}的发票页面点击“重新开票”，填写正确的抬头即可。",
    "请先用原装充电器充电30分钟再试。如果仍然无法充电，我们为您办理换货。",
    "已为您联系快递公司核实，{p}的签收记录有误，我们会在48小时内给您答复。",
    "这张优惠券需要订单满{a}元才能使用，另外特价商品不参与优惠。",
    "订单{o}还未出库，已为您修改收货地址。",
    "退款已经原路退回，银行卡一般需要1到3个工作日到账，请留意。",
]
EN_QUESTIONS = [
    "Hi, my {p} from order {o} still hasn't shipped. Can you check the tracking number?",
    "The {p} arrived with a cracked case. Damaged on arrival, I'd like a refund.",
    "Can I return the {p} within 30 days if I don't like it?",
    "I need an invoice with my company name on it, VAT number {t}.",
    "Where is my refund for order {o}? It has been a week.",
    "My {p} won't turn on after charging overnight.",
    "The tracking number says delivered but I never got the package.",
    "Why can't I use my discount code? The cart total is ${a}.",
    "Can I change the shipping address on order {o}?",
    "Do you ship the {p} to Canada, and how long does it take?",
]
EN_ANSWERS = [
    "Thanks for waiting! Order {o} ships tomorrow; you'll get the tracking number by email as soon as it leaves our warehouse.",
    "I'm sorry the {p} was damaged on arrival. I've started a refund of ${a}; it reaches your card in 3-5 business days.",
    "Yes, the {p} can be returned within 30 days. Use the **Return item** button on the order page.",
    "Sure. Open the order, choose *Request invoice* and enter your company name and VAT number {t}.",
    "Your refund for order {o} was issued on Monday; banks usually need 3-5 business days to show it.",
    "Please hold the power button for 10 seconds to reset the {p}. If it still won't start, we'll replace it.",
    "I've opened an investigation with the carrier. If the package isn't found in 48 hours we'll resend it.",
    "That code needs a minimum order of ${a} and excludes items already on sale.",
    "Done: the shipping address on order {o} is updated because it hasn't shipped yet.",
    "We ship the {p} to Canada; delivery takes 5-8 business days and duties are included.",
]
FOLLOW_UPS_ZH = ["好的，谢谢！", "还有别的办法吗？", "那我等一下。", "麻烦尽快处理，谢谢。"]
FOLLOW_UPS_EN = ["Great, thanks!", "Is there anything faster?", "OK, I'll wait.", "Please hurry, thank you."]


def _fill(template: str, rng: random.Random, products: list[str]) -> str:
    return template.format(
        p=rng.choice(products), o=f"{rng.randrange(10**9, 10**10)}", t=f"91{rng.randrange(10**15, 10**16)}",
        a=f"{rng.randrange(20, 2000)}",
    )


def generate(total_messages: int) -> None:
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    from chat.models import Conversation, Message
    from engine.language import detect_language
    from personas.models import Persona
    from personas.services import ensure_default_persona

    rng = random.Random(20261125)
    persona = ensure_default_persona()
    Message.objects.all().delete()
    Conversation.objects.all().delete()
    per_conversation = 10
    n_conversations = total_messages // per_conversation
    start = timezone.now() - dt.timedelta(days=120)
    print(f"generating {n_conversations} conversations, {n_conversations * per_conversation} messages ...", flush=True)
    began = time.perf_counter()
    batch = 500
    for first in range(0, n_conversations, batch):
        with transaction.atomic():
            conversations = []
            for i in range(first, min(first + batch, n_conversations)):
                chinese = rng.random() < 0.5
                conversations.append(Conversation(
                    guest_id=f"bench-{i}", persona=persona, status="closed" if rng.random() < 0.7 else "open",
                ))
            conversations = Conversation.objects.bulk_create(conversations)
            messages = []
            titles = []
            for conversation in conversations:
                chinese = rng.random() < 0.5
                questions, answers = (ZH_QUESTIONS, ZH_ANSWERS) if chinese else (EN_QUESTIONS, EN_ANSWERS)
                products = ZH_PRODUCTS if chinese else EN_PRODUCTS
                follow = FOLLOW_UPS_ZH if chinese else FOLLOW_UPS_EN
                topic = rng.randrange(len(questions))
                when = start + dt.timedelta(seconds=rng.randrange(120 * 86400))
                for turn in range(per_conversation // 2):
                    question = _fill(questions[topic], rng, products) if turn == 0 else rng.choice(follow)
                    if turn == 0 and rng.random() < 0.1:  # some customers mix languages
                        question += " " + _fill(rng.choice(EN_QUESTIONS if chinese else ZH_QUESTIONS), rng, products)
                    answer = _fill(answers[topic if turn == 0 else rng.randrange(len(answers))], rng, products)
                    status = rng.choices(["complete", "failed", "stopped", "interrupted"], [97, 1, 1, 1])[0]
                    messages.append(Message(
                        conversation=conversation, seq=2 * turn + 1, role="user", content=question,
                        created_at=when,
                    ))
                    messages.append(Message(
                        conversation=conversation, seq=2 * turn + 2, role="assistant",
                        content="" if status == "failed" else answer, status=status, model="qwen2.5-7b-instruct",
                        persona=persona, prompt_tokens=rng.randrange(200, 3000), completion_tokens=rng.randrange(20, 400),
                        ttft_ms=rng.randrange(60, 900), duration_ms=rng.randrange(800, 12000),
                        finish_reason="stop" if status == "complete" else "",
                        error_code="engine_unavailable" if status == "failed" else "", created_at=when,
                    ))
                    when += dt.timedelta(seconds=rng.randrange(20, 600))
                    if turn == 0:
                        titles.append((conversation.pk, question[:60], detect_language(question)))
            Message.objects.bulk_create(messages, batch_size=2000)
            for pk, title, language in titles:
                Conversation.objects.filter(pk=pk).update(title=title, language=language)
        print(f"  {min(first + batch, n_conversations)}/{n_conversations}", end="\r", flush=True)
    Persona.objects.filter(slug=MARKER_SLUG).delete()
    Persona.objects.create(name=str(total_messages), slug=MARKER_SLUG, system_prompt="benchmark data marker")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE chat_message; ANALYZE chat_conversation")
    print(f"\ngenerated in {time.perf_counter() - began:.0f} s", flush=True)


def ensure_data(total_messages: int, regenerate: bool) -> None:
    from django.core.management import call_command

    from chat.models import Message
    from personas.models import Persona

    call_command("migrate", verbosity=0, interactive=False)
    marker = Persona.objects.filter(slug=MARKER_SLUG).first()
    if regenerate or marker is None or marker.name != str(total_messages) or Message.objects.count() < total_messages:
        generate(total_messages)


# --- export measurement (runs in a fresh subprocess per format) -------------------------------------
def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_export(fmt: str) -> dict[str, Any]:
    import tracemalloc

    from transcripts import exports
    from transcripts import filters as transcripts

    generate_lines, _ = exports.BULK_FORMATS[fmt]
    filters = transcripts.TranscriptFilters()
    from chat.models import Message

    total = Message.objects.count()
    baseline = _current_rss_mb()

    def run() -> tuple[float, int]:
        began = time.perf_counter()
        size = 0
        for chunk in exports.batched(generate_lines(transcripts.messages_matching(filters))):
            size += len(chunk)
        return time.perf_counter() - began, size

    timings = [run() for _ in range(3)]
    peak_rss = _rss_mb()
    tracemalloc.start()
    run()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = statistics.median(t for t, _ in timings)
    return {
        "format": fmt, "messages": total, "seconds": seconds, "bytes": timings[0][1],
        "messages_per_s": total / seconds, "mb_per_s": timings[0][1] / seconds / 2**20,
        "baseline_rss_mb": baseline, "peak_rss_mb": peak_rss, "traced_peak_mb": traced_peak / 2**20,
    }


def measure_search(runs: int) -> list[dict[str, Any]]:
    from accounts import roles
    from accounts.access import Actor
    from chat.selectors import search_own_history
    from transcripts import filters as transcripts

    agent = Actor(user_id=None, guest_id="", role=roles.AGENT)
    results = []
    for query in QUERIES:
        found = transcripts.search_transcripts(agent, query)  # warm-up
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            transcripts.search_transcripts(agent, query)
            samples.append((time.perf_counter() - began) * 1000)
        samples.sort()
        matches = transcripts.conversations_matching(transcripts.TranscriptFilters(q=query)).count()
        # The customer's own-history search over the same index (one customer's conversation).
        customer = Actor(user_id=None, guest_id="bench-17")
        own = []
        for _ in range(max(5, runs // 3)):
            began = time.perf_counter()
            search_own_history(customer, query)
            own.append((time.perf_counter() - began) * 1000)
        results.append({
            "own_p50_ms": statistics.median(own),
            "query": query, "matching_conversations": matches, "page": len(found),
            "p50_ms": samples[(len(samples) - 1) // 2], "p95_ms": samples[max(0, -(-95 * len(samples) // 100) - 1)],
        })
    return results


def match_paths() -> list[dict[str, Any]]:
    """How each query's message match is answered (index or scan), and how long counting every
    matching message takes on its own (median of 5)."""
    from django.db import connection

    from chat import search

    rows = []
    for query in QUERIES:
        queryset = search.messages_containing(query).order_by().values("pk")
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN " + sql, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                path = ("trigram GIN index (bitmap scan)" if search.PG_INDEX in plan
                        else "sequential scan" if "Seq Scan" in plan else plan.splitlines()[0])
            else:
                path = "FTS5 trigram MATCH" if search.FTS_TABLE in sql else "LIKE (table scan)"
        samples = []
        for _ in range(5):
            began = time.perf_counter()
            count = queryset.count()
            samples.append((time.perf_counter() - began) * 1000)
        rows.append({"query": query, "path": path, "messages": count, "ms": statistics.median(samples)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--measure-export", help=argparse.SUPPRESS)  # subprocess mode
    args = parser.parse_args()
    configure(args.db, args.database_url)
    import django

    django.setup()
    if args.measure_export:
        print(json.dumps(measure_export(args.measure_export)))
        return
    ensure_data(args.messages, args.regenerate)
    from django.db import connection

    vendor = connection.vendor
    exports_measured = []
    for fmt in ("jsonl", "csv"):
        command = [sys.executable, "-m", "bench.history", "--db", args.db, "--measure-export", fmt]
        if args.database_url:
            command += ["--database-url", args.database_url]
        output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
        exports_measured.append(json.loads(output.strip().splitlines()[-1]))
    searches = measure_search(args.runs)
    paths = match_paths()

    print(f"\n## History benchmark: {vendor}, {exports_measured[0]['messages']:,} messages\n")
    print("| Export | messages/s | MB/s | time | output | peak RSS (baseline) | traced peak |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in exports_measured:
        print(f"| {row['format']} | {row['messages_per_s']:,.0f} | {row['mb_per_s']:.1f} | {row['seconds']:.2f} s | "
              f"{row['bytes'] / 2**20:.1f} MB | {row['peak_rss_mb']:.0f} MB ({row['baseline_rss_mb']:.0f} MB) | "
              f"{row['traced_peak_mb']:.1f} MB |")
    print("\n| Search (search_transcripts, first page) | matching conversations | p50 | p95 | own history p50 |")
    print("|---|---:|---:|---:|---:|")
    for row in searches:
        print(f"| `{row['query']}` | {row['matching_conversations']:,} | {row['p50_ms']:.1f} ms | {row['p95_ms']:.1f} ms | "
              f"{row['own_p50_ms']:.1f} ms |")
    print("\n| Message match alone | answered by | matching messages | count(*) time |")
    print("|---|---|---:|---:|")
    for row in paths:
        print(f"| `{row['query']}` | {row['path']} | {row['messages']:,} | {row['ms']:.1f} ms |")
    print(f"\n({args.runs} timed runs per query after a warm-up; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
