"""The mirror agrees with Temporal: runs ended outside the interpreter, stalled runs, cancel.

Each case ends (or stalls) a run the way an operator or the server does, through Temporal
itself, and reads the outcome through the API as a user would.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus

from promptpilot.temporal import connect
from schema.run import RunRecord
from tests.conftest import Service, unique_slug
from tests.reconcile_support import (
    BAD_DEPLOY_MESSAGE,
    DEPLOY,
    bad_deploy_worker,
    start_directly,
    start_stalled,
    start_waiting_run,
    wait_api,
    waiting,
)
from tests.triggers_support import echo, runs_of, wait_runs
from tests.ui_login import sign_in


async def test_a_run_terminated_in_temporal_is_failed_with_who_and_why(service: Service) -> None:
    client = await connect(service.settings, "dev")
    run_id = await start_waiting_run(service)

    began = time.monotonic()
    await client.get_workflow_handle(run_id).terminate(reason="stuck after deploy 41")
    run = await wait_api(service, run_id, ("failed", "completed", "cancelled"), within=15)

    assert run["status"] == "failed"
    assert time.monotonic() - began < 10
    assert run["error"]["type"] == "terminated"
    assert "stuck after deploy 41" in run["error"]["message"]
    assert run["error"]["details"]["identity"] == client.identity
    assert run["finishedAt"] is not None
    steps = {s["stepId"]: s for s in run["steps"]}
    assert steps["prep"]["status"] == "completed"
    assert steps["review"]["status"] == "failed"  # it was waiting: closed with the run's error
    assert steps["review"]["error"]["type"] == "terminated"
    listed = (await service.http.get("/api/workflows/runs", params={"status": "running"}))
    assert run_id not in {r["id"] for r in listed.json()["runs"]}


async def test_a_run_past_its_execution_timeout_is_failed_run_timed_out(service: Service) -> None:
    client = await connect(service.settings, "dev")
    handle = await start_directly(service, client, waiting(unique_slug("timeout")),
                                  execution_timeout=timedelta(seconds=2), pending_row=True)

    run = await wait_api(service, handle.id, ("failed", "completed", "cancelled"), within=20)

    assert (await handle.describe()).status == WorkflowExecutionStatus.TIMED_OUT
    assert run["status"] == "failed"
    assert run["error"]["type"] == "run_timed_out"
    assert "execution timeout of 2 s" in run["error"]["message"]
    assert {s["stepId"]: s["status"] for s in run["steps"]} == {
        "prep": "completed", "review": "failed"}


async def test_a_stalled_run_shows_stalled_with_the_failure_and_can_be_cancelled(
    service: Service,
) -> None:
    client = await connect(service.settings, "dev")
    async with bad_deploy_worker(client) as worker:
        # What the issue saw: the mirror says completed while Temporal retries the task.
        run_id = await start_stalled(service, client, worker, service.store)

        run = await wait_api(service, run_id, ("stalled",), within=30)

        assert run["error"]["type"] == "workflow_task_failed"
        assert BAD_DEPLOY_MESSAGE in run["error"]["message"]
        assert run["finishedAt"] is None
        stalled = await service.http.get("/api/workflows/runs", params={"status": "stalled"})
        assert run_id in {r["id"] for r in stalled.json()["runs"]}
        async with httpx.AsyncClient(base_url=service.url) as browser:
            await sign_in(browser)
            page = (await browser.get(f"/ui/runs/{run_id}")).text
        assert "Run stalled:" in page
        assert BAD_DEPLOY_MESSAGE in page

        # A write from a retried attempt (its local activities run again) leaves it stalled.
        row = await service.store.get_run("dev", uuid.UUID(run_id))
        assert row is not None
        await service.store.upsert_run(RunRecord(
            run_id=run_id, environment="dev", workflow_id=str(row.workflow_id),
            workflow_version=1, status="completed"))
        assert (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"][
            "status"] == "stalled"

        cancelled = await service.http.post(f"/api/workflows/runs/{run_id}/cancel")

        assert cancelled.status_code == 200, cancelled.text
        run = cancelled.json()["run"]
        assert run["status"] == "cancelled"
        assert run["error"]["type"] == "cancelled"
        assert "cancelled by API key 'test dev key'" in run["error"]["message"]
        assert "stalled" in run["error"]["message"]
        description = await client.get_workflow_handle(run_id).describe()
        assert description.status == WorkflowExecutionStatus.TERMINATED


async def test_a_stalled_run_goes_back_to_running_when_the_deploy_is_fixed(
    service: Service,
) -> None:
    client = await connect(service.settings, "dev")
    DEPLOY["fixed"] = False
    async with bad_deploy_worker(client, fixable=True) as worker:
        run_id = await start_stalled(service, client, worker, service.store,
                                     mirror_status="running")
        try:
            await wait_api(service, run_id, ("stalled",), within=30)

            DEPLOY["fixed"] = True  # the next attempt of its workflow task succeeds

            run = await wait_api(service, run_id, ("running",), within=60)
            assert run["error"] is None
        finally:
            DEPLOY["fixed"] = False
            await client.get_workflow_handle(run_id).terminate(reason="test cleanup")


async def test_cancel_of_a_run_that_does_not_stop_terminates_it_after_the_grace(
    service: Service,
) -> None:
    service.settings.reconcile.cancel_grace_seconds = 1.0
    client = await connect(service.settings, "dev")
    # No worker serves its queue: the cancel request is recorded and nothing acts on it.
    handle = await start_directly(service, client, waiting(unique_slug("stuck")),
                                  task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
                                  pending_row=True)

    began = time.monotonic()
    response = await service.http.post(f"/api/workflows/runs/{handle.id}/cancel")

    assert response.status_code == 200, response.text
    assert 1.0 <= time.monotonic() - began < 8
    run = response.json()["run"]
    assert run["status"] == "cancelled"
    assert "cancelled by API key 'test dev key'" in run["error"]["message"]
    assert "1 s grace period" in run["error"]["message"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    again = await service.http.post(f"/api/workflows/runs/{handle.id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_finished"


async def test_a_completed_run_whose_final_row_was_lost_gets_its_result(
    service: Service, engine: AsyncEngine,
) -> None:
    slug = unique_slug("lost")
    await service.create_workflow(echo(slug))
    done = (await service.run(slug, {"topic": "tides"})).json()["run"]
    assert done["status"] == "completed"
    async with engine.begin() as db:  # as if the interpreter's last writes never landed
        await db.execute(text(
            "update workflow_runs set status = 'running', output_json = null, "
            "finished_at = null where id = :id"), {"id": uuid.UUID(done["id"])})

    run = await wait_api(service, done["id"], ("completed",), within=15)

    assert run["outputJson"] == done["outputJson"] == {"topic": "tides"}
    assert run["finishedAt"] is not None


async def test_a_pending_run_whose_workflow_never_started_fails(
    service: Service, engine: AsyncEngine,
) -> None:
    # What a start leaves when its process dies between recording the run and starting it.
    row = await service.create_workflow(waiting(unique_slug("orphan")))
    run_id = str(uuid.uuid4())
    await service.store.create_run(RunRecord(run_id=run_id, environment="dev",
                                             workflow_id=row["id"], workflow_version=1,
                                             status="pending"))
    async with engine.begin() as db:
        await db.execute(text("update workflow_runs set created_at = now() - interval "
                              "'5 minutes' where id = :id"), {"id": uuid.UUID(run_id)})

    run = await wait_api(service, run_id, ("failed",), within=15)

    assert run["error"]["type"] == "not_started"
    assert "never started" in run["error"]["message"]


async def test_a_scheduled_fire_that_cannot_start_is_a_failed_run(service: Service) -> None:
    slug = unique_slug("badfire")
    await service.create_workflow(echo(slug))
    created = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "nightly", "type": "scheduled",
        "config": {"cronExpressions": ["0 3 * * *"]}, "input": {"topic": "tides"}})
    assert created.status_code == 201, created.text
    trigger_id = created.json()["trigger"]["id"]
    try:
        changed = echo(slug)  # version 2 needs a variable the stored input does not have
        changed["variables"].append({"name": "region", "type": "string", "required": True})
        assert (await service.http.put(f"/api/workflows/{slug}", json=changed)).status_code == 200

        fired = await service.http.post(f"/api/triggers/{trigger_id}/trigger")
        assert fired.status_code == 202, fired.text

        run = (await wait_runs(service, slug, 1, status="failed", within=20))[0]
        assert len(await runs_of(service, slug)) == 1
        assert run["trigger"] == "scheduled"
        assert run["error"]["type"] == "input_invalid"
        assert "/region" in run["error"]["message"]
        metrics = (await service.http.get(f"/api/triggers/{trigger_id}")).json()["trigger"][
            "metrics"]
        assert metrics["byStatus"] == {"failed": 1}
    finally:
        await service.http.delete(f"/api/triggers/{trigger_id}")
