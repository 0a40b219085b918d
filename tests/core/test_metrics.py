"""Prometheus ``/metrics``: who may read it (404 for everyone else), and the figures after known
conversations through the real websocket stack and the vLLM simulator."""
from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from tests.conftest import receive_until

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-token-0123456789"


def scrape(settings: Any, **extra: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of an exposition (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            got = ",".join(sorted((match.group(2) or "").split(","))) if match.group(2) else ""
            if got == wanted:
                return float(match.group(3))
    return 0.0


# --- access -------------------------------------------------------------------------------------------
def test_metrics_are_404_when_not_configured(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Bearer {TOKEN}x", TOKEN, f"Basic {TOKEN}"])
def test_a_wrong_token_gets_the_same_404_as_an_unknown_url(settings: Any, header: str) -> None:
    settings.METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 404
    unknown = Client().get("/no-such-page")

    def page(content: bytes, path: bytes) -> bytes:  # the page names the path and has a CSRF token
        return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content).replace(path, b"")

    assert page(response.content, b"/metrics") == page(unknown.content, b"/no-such-page")


def test_allowed_networks(settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.1/32"]
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="192.168.1.5").status_code == 404
    assert Client().post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_a_bad_network_setting_is_refused_at_start() -> None:
    import os
    import subprocess
    import sys

    from tests.live import ROOT

    env = {**os.environ, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-network"}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS: 'not-a-network' is not a network" in done.stderr


# --- figures ----------------------------------------------------------------------------------------------
async def test_metrics_after_known_conversations(engine_sim: Any, new_chat: Any, settings: Any) -> None:
    from asgiref.sync import sync_to_async

    before = await sync_to_async(scrape)(settings)
    conversation, ws = await new_chat()
    during = await sync_to_async(scrape)(settings)
    assert value(during, "anyhour_open_sockets") == value(before, "anyhour_open_sockets") + 1

    for n in range(2):
        await ws.send_json_to({"type": "send", "text": f"Where is my parcel {n}?", "client_id": f"m-{n}"})
        frames = await receive_until(ws, "end")
        assert frames[-1]["message"]["status"] == "complete"
    # One answer that fails mid-stream (the replica drops the connection after 3 tokens).
    engine_sim.configure(fail="drop", fail_after=3, fail_count=1)
    await ws.send_json_to({"type": "send", "text": "And my refund?", "client_id": "m-drop"})
    frames = await receive_until(ws, "end")
    assert frames[-1]["message"]["status"] == "failed"

    after = await sync_to_async(scrape)(settings)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("anyhour_time_to_first_token_seconds_count") == 3
    assert grew("anyhour_answers_total", status="complete") == 2
    assert grew("anyhour_answers_total", status="failed") == 1
    # Time to first token: the simulator waits 20 ms; the sum is at least three times that.
    assert 3 * 0.02 <= grew("anyhour_time_to_first_token_seconds_sum") < 3 * 5
    # Relay delay: each engine delta frame observed once; coalescing keeps them within 30 ms + slack.
    relays = grew("anyhour_relay_delay_seconds_count")
    deltas_in_last = sum(1 for f in frames if f["type"] == "delta")
    assert relays >= deltas_in_last >= 1
    assert value(after, "anyhour_relay_delay_seconds_bucket", le="+Inf") == value(after, "anyhour_relay_delay_seconds_count")
    replica = engine_sim.base_url.rstrip("/")
    # The drop after the first token: one error for that replica (codes: engine/client.py).
    dropped = sum(grew("anyhour_engine_errors_total", replica=replica, code=code)
                  for code in ("engine_error", "engine_unavailable", "engine_timeout"))
    assert dropped == 1
    assert value(after, "anyhour_active_streams") == 0
    assert value(after, "anyhour_engine_up", replica=replica) == 1
    assert value(after, "anyhour_engine_inflight", replica=replica) == 0
    # Every customer message queued its sentiment analysis (analysis app) for the worker.
    pending = await sync_to_async(lambda: DBTaskResult.objects.ready().count())()
    assert pending >= 1 and value(after, "anyhour_tasks_pending") == pending
    # Never a customer's words in the metrics.
    assert "parcel" not in after and "refund" not in after
    await ws.disconnect()
    final = await sync_to_async(scrape)(settings)
    assert value(final, "anyhour_open_sockets") == value(before, "anyhour_open_sockets")


async def test_an_answer_in_flight_is_an_active_stream(engine_sim: Any, new_chat: Any, settings: Any) -> None:
    from asgiref.sync import sync_to_async

    engine_sim.configure(tokens=400, tokens_per_second=50)
    _, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "Tell me a long story", "client_id": "long"})
    await receive_until(ws, "delta")
    during = await sync_to_async(scrape)(settings)
    assert value(during, "anyhour_active_streams") == 1
    assert value(during, "anyhour_engine_inflight", replica=engine_sim.base_url.rstrip("/")) == 1
    await ws.send_json_to({"type": "stop"})
    frames = await receive_until(ws, "end")
    assert frames[-1]["message"]["status"] == "stopped"
    after = await sync_to_async(scrape)(settings)
    assert value(after, "anyhour_active_streams") == 0


def test_tasks_pending_counts_the_workers_queue(settings: Any) -> None:
    from django_tasks_db.models import DBTaskResult

    from knowledge.tasks import ingest

    before = value(scrape(settings), "anyhour_tasks_pending")
    assert before == DBTaskResult.objects.ready().count()
    ingest.enqueue(123456, 1)  # waits for a worker that is not running in this test
    assert value(scrape(settings), "anyhour_tasks_pending") == before + 1


# --- readiness: the configured model is served -----------------------------------------------------------
def test_readyz_says_when_the_engine_serves_another_model(engine_sim: Any, settings: Any) -> None:
    assert Client().get("/readyz").json()["checks"]["engine"] == "ok"
    settings.ENGINE_MODEL = "Qwen/Qwen2.5-7B-Instruct"  # the simulator serves "anyhour-sim"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["down"] == ["engine"] and response.json()["checks"]["engine"] == "model_missing"
