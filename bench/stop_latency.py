"""How fast `stop` stops: from the customer's stop frame to (a) the `end` frame at the client and
(b) the engine noticing the closed request (which is when vLLM frees the GPU slot).

Run by hand:  .venv/bin/python -m bench.stop_latency [--trials 30] [--redis-url ...]
Starts its own engine simulator and one Daphne (production settings), prints a Markdown table.
"""
from __future__ import annotations

import argparse
import asyncio
import time

import orjson

from bench.relay import Servers, Sim, close_all, customers, fmt, log, pct


async def trial(customer, sim: Sim) -> tuple[float, float, float | None]:
    ws = customer.ws
    await ws.send(orjson.dumps({"type": "send", "text": "a long answer please", "client_id": f"s{time.time_ns()}"}).decode())
    while orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "delta":
        pass
    await asyncio.sleep(0.2)  # mid-answer
    before = (await sim.stats())["aborted"]
    sent = time.time()
    await ws.send('{"type":"stop"}')
    while True:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == "end":
            end_ms = (time.time() - sent) * 1000
            status = frame["message"]["status"]
            break
    abort_ms = None
    for _ in range(200):
        stats = await sim.stats()
        if stats["aborted"] > before:
            abort_ms = (stats["aborts"][-1]["at"] - sent) * 1000
            break
        await asyncio.sleep(0.01)
    return end_ms, abort_ms if abort_ms is not None else float("nan"), status == "stopped"


async def run(servers: Servers, trials: int) -> str:
    sim = Sim(servers.sim_url)
    await sim.config(tokens=5000, tokens_per_second=30, first_token_delay=0.05, stamp=False)
    (customer,) = await customers(servers, 1)
    ends, aborts, ok = [], [], 0
    try:
        for _ in range(trials):
            end_ms, abort_ms, stopped = await trial(customer, sim)
            ends.append(end_ms)
            aborts.append(abort_ms)
            ok += stopped
    finally:
        await close_all([customer])
        await sim.aclose()
    return "\n".join([
        f"**Stop latency** ({trials} trials, one conversation, answer stopped 0.2 s after its first delta)",
        "",
        "| measure | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|",
        f"| stop frame → `end` frame at the client | {fmt(pct(ends, 50))} | {fmt(pct(ends, 95))} | {fmt(max(ends))} |",
        f"| stop frame → engine sees the request closed | {fmt(pct(aborts, 50))} | {fmt(pct(aborts, 95))} | {fmt(max(aborts))} |",
        "",
        f"{ok}/{trials} answers ended with status `stopped`.",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    args = parser.parse_args()
    # Servers reads these fields of the relay benchmark's options.
    args.settings, args.first_token_ms, args.tps = "config.settings", 50.0, 30.0
    servers = Servers(args)
    try:
        servers.start_sim()
        servers.start_daphne()
        log("measuring stop latency")
        print(asyncio.run(run(servers, args.trials)))
    finally:
        servers.stop()
        servers.cleanup_tmp(keep=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
