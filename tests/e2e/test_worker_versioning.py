"""Interpreter upgrades: a run stays on the build it started on; new runs go to the current one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker

from promptpilot.deployments import builds, current_build, deploy_command
from promptpilot.services import running_api, running_worker
from promptpilot.settings import Settings
from promptpilot.temporal import connect, withdraw_worker_client
from tests.conftest import DEV_KEY, unique_slug
from tests.e2e.test_approval import gated


def on_build(settings: Settings, deployment: str, build_id: str) -> Settings:
    """The test's settings for a worker of one build of ``deployment``."""
    temporal = settings.temporal.model_copy(
        update={"deployment_name": deployment, "build_id": build_id})
    return settings.model_copy(update={"temporal": temporal})


@asynccontextmanager
async def apart(settings: Settings, worker: Worker) -> AsyncIterator[None]:
    """The API in the test's process starts runs with its own client, as it does in its own
    process in production: sharing a worker's client, a run's first workflow task would go
    eagerly to that worker, whatever build is current (measured: the new run ran on build 1)."""
    withdraw_worker_client(settings.temporal.address, worker.client)
    yield


async def start_waiting(http: httpx.AsyncClient, slug: str) -> str:
    """Start a run and return its id once it waits for approval."""
    response = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                               json={"input": {}})
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run"]["id"]
    for _ in range(200):
        run = (await http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
        if any(s["stepId"] == "review" and s["status"] == "waiting" for s in run["steps"]):
            return run_id
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never waited for approval")


async def builds_of(client: Client, run_id: str) -> set[str]:
    """The builds that completed the run's workflow tasks, from its history."""
    history = await client.get_workflow_handle(run_id).fetch_history()
    return {e.workflow_task_completed_event_attributes.deployment_version.build_id
            for e in history.events if e.HasField("workflow_task_completed_event_attributes")}


async def until(check: Any, *, seconds: float = 15.0) -> None:
    """Poll an async predicate until it holds (Temporal's routing and drainage are async)."""
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{check.__name__} never held")


async def test_a_run_finishes_on_its_build_while_new_runs_go_to_the_current_one(
        settings: Settings, engine: AsyncEngine) -> None:
    deployment = f"pp-{uuid.uuid4().hex[:8]}"
    one, two = (WorkerDeploymentVersion(deployment, b) for b in ("build-1", "build-2"))
    url = settings.database.url
    assert url
    client = await connect(settings, "dev")
    slug = unique_slug("upgrade")
    async with (
        running_worker(on_build(settings, deployment, one.build_id), url) as first,
        apart(settings, first),
        running_api(settings, url) as api,
        httpx.AsyncClient(base_url=api.url, timeout=60,
                          headers={"Authorization": f"Bearer {DEV_KEY}"}) as http,
    ):
        # The deployment's first build became current when its worker started.
        assert await current_build(client, deployment) == one.build_id
        assert (await http.post("/api/workflows", json=gated(slug))).status_code == 201
        old_run = await start_waiting(http, slug)

        async with (running_worker(on_build(settings, deployment, two.build_id), url) as second,
                    apart(settings, second)):
            # A second build does not take over by itself: an operator makes it current.
            assert await current_build(client, deployment) == one.build_id

            operator = on_build(settings, deployment, "")

            async def ramped() -> bool:
                try:
                    await deploy_command(operator, "ramp", two.build_id, 25)
                except RPCError:  # its worker's first poll has not reached the server yet
                    return False
                return True
            await until(ramped)
            status = await deploy_command(operator, "status")
            assert status[1:] == ["  build-1  current", "  build-2  ramping 25%"]
            await deploy_command(operator, "set-current", two.build_id)
            new_run = await start_waiting(http, slug)

            async def one_draining() -> bool:
                return (await builds(client, deployment)) == {
                    one.build_id: "draining", two.build_id: "current"}
            await until(one_draining)
            for run_id in (old_run, new_run):
                response = await http.post(
                    f"/api/workflows/runs/{run_id}/steps/review/approve", json={})
                assert response.status_code == 200, response.text
                assert response.json()["run"]["status"] == "completed"

            assert await builds_of(client, old_run) == {one.build_id}
            assert await builds_of(client, new_run) == {two.build_id}
            info = (await client.get_workflow_handle(old_run).describe()
                    ).raw_description.workflow_execution_info.versioning_info
            assert VersioningBehavior(info.behavior) is VersioningBehavior.PINNED
            assert info.deployment_version.build_id == one.build_id

            # Its pinned run closed, build 1 is drained: its workers may now stop.
            async def one_drained() -> bool:
                return (await builds(client, deployment))[one.build_id] == "drained"
            await until(one_drained)

        # `promptpilot dev` (start_as_current): a restarted worker's new build takes new runs.
        dev = on_build(settings, deployment, "build-3")
        dev.temporal.start_as_current = True
        async with running_worker(dev, url):
            assert await current_build(client, deployment) == "build-3"
