"""Figures for streamed answers and agent steps (README: Streamed answers; the closing note):
the delay from the provider's first chunk to the client's first `delta` event, and the history
events each agent turn adds. Printed and recorded; no timed assertion (shared machines)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.e2e.test_streaming import ANSWER, drafted
from tests.fakes.llm_server import FakeLlmServer, ok, tool_calls
from tests.reliability.conftest import Record

RUNS = 20


async def _first_delta(service: Service, run_id: str) -> float:
    """When (monotonic) the run's first delta arrived; the stream is read to its end."""
    first = 0.0
    async with aconnect_sse(service.http, "GET", f"/api/workflows/runs/{run_id}/events",
                            timeout=httpx.Timeout(30, read=60)) as source:
        async for event in source.aiter_sse():
            if event.event == "delta" and not first:
                first = time.monotonic()
    assert first, "no delta arrived"
    return first


async def test_first_token_delay(service: Service, llm: FakeLlmServer, record: Record) -> None:
    slug = unique_slug("stream-figure")
    await service.create_workflow(drafted(slug, "gpt-4o-mini"))
    delays = []
    for _ in range(RUNS):
        llm.reset()
        llm.enqueue(ok(ANSWER, wait=0.3, chunk_delay=0.02))
        started = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                          json={"input": {}})
        arrived = await _first_delta(service, started.json()["run"]["id"])
        # The fake runs in this process: its clock is ours.
        delays.append((arrived - llm.first_chunks[0]) * 1000)
    delays.sort()
    p50, p95 = statistics.median(delays), delays[int(len(delays) * 0.95) - 1]
    print(f"first chunk -> first delta at the client: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"max {delays[-1]:.1f} ms over {RUNS} runs")
    record(p50 / 1000, fault="first streamed chunk to the client's first delta",
           p50Ms=round(p50, 1), p95Ms=round(p95, 1), maxMs=round(delays[-1], 1), runs=RUNS)
    assert all(d > 0 for d in delays)


async def _history_events(service: Service, llm: FakeLlmServer,
                          turns: int) -> tuple[int, dict[str, Any]]:
    slug = unique_slug("agent-history")
    await service.create_workflow({"id": slug, "name": "agent", "steps": [{
        "id": "research", "type": "agent", "model": "gpt-4o-mini", "promptUser": "Otters?",
        "tools": ["web_search"], "maxTurns": 10}]})
    llm_replies = [tool_calls([("web_search", {"query": f"q{i}"})]) for i in range(turns - 1)]
    llm.enqueue(*llm_replies, ok("Otters hold hands."))
    run = (await service.run(slug, {})).json()["run"]
    assert run["status"] == "completed", run
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    return len(history.events), run


async def test_history_events_per_agent_turn(service: Service, llm: FakeLlmServer,
                                             record: Record) -> None:
    one, _ = await _history_events(service, llm, 1)
    five, run = await _history_events(service, llm, 5)
    assert len(run["steps"][0]["rendered"]["turns"]) == 5
    per_turn = (five - one) / 4
    print(f"history events: {one} for a one-turn agent run, {five} for five turns "
          f"(four with one tool call each): {per_turn:.1f} per turn with its tool call")
    record(0.0, fault="history events per agent turn (one tool call each)",
           oneTurn=one, fiveTurns=five, perTurn=per_turn)
