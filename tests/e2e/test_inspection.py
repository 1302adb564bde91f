"""Run inspection: the cross-workflow list, live SSE events, cancel, search attributes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, hang, ok


async def _start(service: Service, slug: str) -> str:
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                       json={"input": {"topic": "tides"}})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run"]["id"]
    return run_id


async def _events(service: Service, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every SSE message of the stream until the server closes it."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    async with service.http.stream("GET", f"/api/workflows/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.partition(":")[2])))
    return events


async def _wait_for_step(service: Service, run_id: str, step_id: str, status: str) -> None:
    for _ in range(200):
        run = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
        if any(s["stepId"] == step_id and s["status"] == status for s in run["steps"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{step_id} never became {status}")


async def test_sse_streams_each_transition_in_order_then_the_final_run(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("sse")
    await service.create_workflow(chain(slug, 3))
    llm.enqueue(hang(0.6))  # step 1 stays in flight long enough to subscribe mid-run
    run_id = await _start(service, slug)

    events = await asyncio.wait_for(_events(service, run_id), timeout=30)

    steps = [(e["stepId"], e["status"]) for kind, e in events if kind == "step"]
    assert steps == [("s1", "running"), ("s1", "completed"), ("s2", "running"),
                     ("s2", "completed"), ("s3", "running"), ("s3", "completed")]
    kind, final = events[-1]
    assert kind == "run"
    assert final["status"] == "completed"
    assert final["id"] == run_id
    assert len(final["steps"]) == 3

    # A late subscriber gets the history (each step's current state) and the end.
    late = await asyncio.wait_for(_events(service, run_id), timeout=10)
    assert [(k, e["status"]) for k, e in late] == [("step", "completed")] * 3 + [
        ("run", "completed")]
    unknown = await service.http.get(
        "/api/workflows/runs/00000000-0000-0000-0000-000000000000/events")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"


async def test_cancel_during_a_step_stops_the_run(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("cancel")
    await service.create_workflow(chain(slug, 3))
    llm.enqueue(ok(), hang(8))
    run_id = await _start(service, slug)
    await _wait_for_step(service, run_id, "s2", "running")

    response = await service.http.post(f"/api/workflows/runs/{run_id}/cancel")

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "cancelled"
    assert run["finishedAt"] is not None
    assert [(s["stepId"], s["status"]) for s in run["steps"]] == [
        ("s1", "completed"), ("s2", "cancelled")]
    await asyncio.sleep(1.0)  # nothing starts later either
    again = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
    assert [s["stepId"] for s in again["steps"]] == ["s1", "s2"]
    assert llm.count(OPENAI_PATH) == 2
    finished = await service.http.post(f"/api/workflows/runs/{run_id}/cancel")
    assert finished.status_code == 409
    assert finished.json()["error"]["code"] == "run_finished"
    missing = await service.http.post(
        "/api/workflows/runs/00000000-0000-0000-0000-000000000000/cancel")
    assert missing.status_code == 404


async def test_run_list_filters_and_pages_across_workflows(service: Service) -> None:
    slug = unique_slug("list")
    await service.create_workflow(chain(slug, 1))
    ids = [(await service.run(slug, {"topic": f"t{i}"})).json()["run"]["id"] for i in range(3)]
    rerun = (await service.run(slug, {"topic": "t0"}, fromStepId="s1")).json()["run"]

    page = (await service.http.get("/api/workflows/runs", params={
        "workflow": slug, "limit": 2, "trigger": "api", "status": "completed"})).json()
    assert [r["id"] for r in page["runs"]] == [ids[2], ids[1]]
    assert page["runs"][0]["workflowSlug"] == slug
    rest = (await service.http.get("/api/workflows/runs", params={
        "workflow": slug, "limit": 2, "trigger": "api", "cursor": page["nextCursor"]})).json()
    assert [r["id"] for r in rest["runs"]] == [ids[0]]
    assert rest["nextCursor"] is None
    reruns = (await service.http.get("/api/workflows/runs", params={
        "workflow": slug, "trigger": "rerun"})).json()["runs"]
    assert [r["id"] for r in reruns] == [rerun["id"]]
    everything = (await service.http.get("/api/workflows/runs", params={"limit": 200})).json()
    assert {rerun["id"], *ids} <= {r["id"] for r in everything["runs"]}
    since = (await service.http.get("/api/workflows/runs", params={
        "workflow": slug, "since": rerun["createdAt"]})).json()["runs"]
    assert [r["id"] for r in since] == [rerun["id"]]
    bad = await service.http.get("/api/workflows/runs", params={"status": "nope"})
    assert bad.status_code == 422
    assert bad.json()["error"]["problems"][0]["pointer"] == "/query/status"


async def test_search_attributes_find_runs_in_temporal(service: Service) -> None:
    slug = unique_slug("sa")
    await service.create_workflow(chain(slug, 1))
    run_id = (await service.run(slug, {"topic": "x"})).json()["run"]["id"]
    client = await connect(service.settings, service.settings.namespace)
    query = f'PromptPilotSlug="{slug}" AND PromptPilotTrigger="api" AND PromptPilotVersion=1'
    found: list[str] = []
    for _ in range(100):  # visibility is eventually consistent
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found == [run_id]
