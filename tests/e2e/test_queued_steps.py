"""A run whose first step waits for a free activity slot is already `running` in the mirror,
as it is in Temporal: its row does not wait for the step's activity to start."""

from __future__ import annotations

import pytest

from promptpilot.settings import Settings
from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery
from tests.fakes.llm_server import FakeLlmServer, ok
from tests.reconcile_support import api_run, wait_api, wait_step


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.temporal.max_concurrent_activities = 1  # one model or tool call at a time
    return settings


async def test_a_run_queued_behind_a_busy_worker_is_running(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("queued")
    await service.create_workflow(feed_discovery(slug))
    llm.enqueue(ok('{"query": "slow"}', wait=6), ok('{"query": "next"}'))

    async def start() -> str:
        response = await service.http.post(f"/api/workflows/{slug}/run?wait=0",
                                           json={"input": {"interests": "AI"}})
        assert response.status_code == 202, response.text
        return str(response.json()["run"]["id"])

    busy = await start()
    await wait_step(service, busy, "step1", "running")
    queued = await start()

    run = await wait_api(service, queued, ("running",), within=5)
    assert (await api_run(service, busy))["status"] == "running"  # still holds the slot
    assert run["startedAt"] is not None
    assert [s["status"] for s in run["steps"]] == ["running"]

    for run_id in (busy, queued):
        assert (await wait_api(service, run_id, ("completed",), within=60))["status"] \
            == "completed"
