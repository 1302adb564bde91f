"""A run's priority orders it in the task queue: a person's run goes before a backlog.

Runs are accepted and started in Temporal while no worker serves the queue (a backlog forms, as
behind a 2,000-run backfill), then one worker with two workflow task slots works it off.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import DEV_KEY, Service, unique_slug

BACKLOG = 30


async def _start(http: httpx.AsyncClient, slug: str, priority: int, n: int) -> str:
    response = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                               json={"input": {"n": n}, "priority": priority})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run"]["id"]
    return run_id


async def _queued(engine: AsyncEngine) -> int:
    async with engine.connect() as db:
        return int((await db.execute(text("select count(*) from run_starts"))).scalar_one())


async def test_a_priority_1_run_goes_before_a_backlog_of_priority_5(
        settings: Settings, engine: AsyncEngine) -> None:
    settings.temporal.max_concurrent_workflow_tasks = 2
    url = settings.database.url
    assert url
    slug = unique_slug("priority")
    definition: dict[str, Any] = {
        "id": slug, "name": "two transforms",
        "variables": [{"name": "n", "type": "integer", "required": True}],
        "steps": [{"id": "a", "type": "transform", "inputMapping": {"n": "input.n"}},
                  {"id": "b", "type": "transform", "inputMapping": {"n": "outputs.a.n"}}]}
    headers = {"Authorization": f"Bearer {DEV_KEY}"}
    async with running_api(settings, url) as api, \
            httpx.AsyncClient(base_url=api.url, headers=headers, timeout=30) as http:
        assert (await http.post("/api/workflows", json=definition)).status_code == 201
        backlog = [await _start(http, slug, 5, n) for n in range(BACKLOG)]
        person = await _start(http, slug, 1, -1)
        deadline = time.monotonic() + 30
        while await _queued(engine) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # every start handed to Temporal: the backlog is there
        assert await _queued(engine) == 0

        async with running_worker(settings, url):
            finished: dict[str, datetime] = {}
            while len(finished) < BACKLOG + 1 and time.monotonic() < deadline + 60:
                for run_id in [person, *backlog]:
                    if run_id in finished:
                        continue
                    run = (await http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
                    if run["status"] == "completed":
                        finished[run_id] = datetime.fromisoformat(run["finishedAt"])
                await asyncio.sleep(0.2)

    assert len(finished) == BACKLOG + 1
    before_person = sum(1 for run_id in backlog if finished[run_id] < finished[person])
    print(f"[priority] backlog runs finished before the priority-1 run: "
          f"{before_person} of {BACKLOG}")
    assert before_person <= BACKLOG // 5


async def test_run_and_execute_start_runs_with_their_priority_and_fairness_key(
        service: Service) -> None:
    slug = unique_slug("ordered")
    await service.create_workflow({"id": slug, "name": "one transform",
                                   "steps": [{"id": "a", "type": "transform"}]})
    ran = await service.http.post(f"/api/workflows/{slug}/run", json={
        "input": {}, "priority": 2, "fairnessKey": "tenant-a"})
    executed = await service.http.post(f"/api/workflows/{slug}/execute", json={"priority": 5})
    too_high = await service.http.post(f"/api/workflows/{slug}/run", json={"priority": 6})

    assert too_high.status_code == 422
    assert "/priority" in too_high.text
    client = await connect(service.settings, "dev")
    seen = []
    for response in (ran, executed):
        run_id = response.json()["run"]["id"]
        described = await client.get_workflow_handle(run_id).describe()
        priority = described.raw_description.workflow_execution_info.priority
        seen.append((priority.priority_key, priority.fairness_key))
    assert seen == [(2, "tenant-a"), (5, slug)]
