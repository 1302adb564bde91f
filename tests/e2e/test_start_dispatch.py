"""The start queue and its dispatchers: runs held by a dispatcher are not orphans, a start
Temporal already has is not made twice, a start that can never be made fails its run."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.start_dispatcher import StartDispatcher
from promptpilot.temporal import connect
from reconcile.reconciler import RunReconciler
from schema.definition import WorkflowDefinition
from schema.run import RunRecord, RunWorkflowInput
from store.run_starts import RunStarts
from store.runs import Store
from tests.conftest import Service, unique_slug
from tests.reconcile_support import api_run, wait_api
from tests.triggers_support import echo
from tests.ui_login import sign_in


async def _queued_run(service: Service, engine: AsyncEngine, start_input: str,
                      due_in: timedelta) -> str:
    """A `pending` run created five minutes ago whose start waits in the queue."""
    row = await service.create_workflow(echo(unique_slug("queued")))
    run_id = str(uuid.uuid4())
    await service.store.create_run(RunRecord(run_id=run_id, environment="dev",
                                             workflow_id=row["id"], workflow_version=1,
                                             status="pending"))
    async with engine.begin() as db:
        await db.execute(text(
            "insert into run_starts (run_id, environment, start_input, attempts, "
            "next_attempt_at, created_at) values (:id, 'dev', :start, 0, "
            "now() + :due, now())"),
            {"id": uuid.UUID(run_id), "start": start_input, "due": due_in})
        await db.execute(text("update workflow_runs set created_at = now() - interval "
                              "'5 minutes' where id = :id"), {"id": uuid.UUID(run_id)})
    return run_id


async def test_a_pending_run_whose_start_is_queued_is_not_failed_as_an_orphan(
    service: Service, engine: AsyncEngine,
) -> None:
    # What a run accepted during a Temporal outage looks like to the reconciler: old, pending,
    # no workflow in Temporal, its start waiting (here for an hour) for the next attempt.
    run_id = await _queued_run(service, engine, "{}", due_in=timedelta(hours=1))
    client = await connect(service.settings, "dev")
    reconciler = RunReconciler(service.store, client, "dev", service.settings.reconcile)

    report = await reconciler.sweep()
    checked = await reconciler.reconcile(run_id)
    read = await api_run(service, run_id)  # a read older than read_check_seconds checks too

    assert run_id not in report.written
    assert checked is None
    assert read["status"] == "pending"
    assert read["error"] is None
    async with httpx.AsyncClient(base_url=service.url) as browser:  # the inspector shows it
        await sign_in(browser)
        listed = await browser.get("/ui/runs", params={"status": "pending"})
        shown = await browser.get(f"/ui/runs/{run_id}")
    assert listed.status_code == 200
    assert run_id in listed.text
    assert shown.status_code == 200
    assert "pending" in shown.text

    # Once no dispatcher holds it (the queue row gone, no workflow), it is an orphan again.
    async with engine.begin() as db:
        await db.execute(text("delete from run_starts where run_id = :id"),
                         {"id": uuid.UUID(run_id)})
    assert await reconciler.reconcile(run_id) == "failed"
    assert (await api_run(service, run_id))["error"]["type"] == "not_started"


async def test_a_start_that_can_never_be_made_fails_its_run(
    service: Service, engine: AsyncEngine,
) -> None:
    run_id = await _queued_run(service, engine, '{"not": "a run input"}', due_in=timedelta(0))
    async with engine.begin() as db:
        await db.execute(text("select pg_notify('promptpilot_run_starts', :id)"),
                         {"id": run_id})

    run = await wait_api(service, run_id, ("failed",), within=15)

    assert run["error"]["type"] == "not_started"
    assert "could not be started" in run["error"]["message"]
    assert await RunStarts(engine).queued([run_id]) == set()


async def test_a_start_temporal_already_has_is_not_made_twice(
    service: Service, engine: AsyncEngine,
) -> None:
    # A dispatcher that started the workflow and died before it took the start off the
    # queue (or whose lease ran out mid-call): the next dispatchers find the workflow there.
    slug = unique_slug("twice")
    await service.create_workflow(echo(slug))
    done = await service.run(slug, {"topic": "once"})
    assert done.status_code == 200, done.text
    run_id = done.json()["run"]["id"]
    client = await connect(service.settings, "dev")
    start_input = (await client.get_workflow_handle(run_id).fetch_history()).events[
        0].workflow_execution_started_event_attributes.input
    sent = (await client.data_converter.decode(start_input.payloads, [RunWorkflowInput]))[0]
    async with engine.begin() as db:
        await db.execute(text(
            "insert into run_starts (run_id, environment, start_input, attempts, "
            "next_attempt_at, created_at) values (:id, 'dev', :start, 0, now(), now())"),
            {"id": uuid.UUID(run_id), "start": sent.model_dump_json()})
    starts = RunStarts(engine)

    async def client_for(_: str) -> Client:
        return client

    racing = [StartDispatcher(starts, client_for, service.settings.temporal.task_queue,
                              service.settings.dispatch) for _ in range(3)]
    results = await asyncio.gather(*(d.start_now(run_id) for d in racing))

    assert results.count(True) <= 1  # one claimed and found it started; the others skipped
    assert await starts.queued([run_id]) == set()
    executions = [e async for e in client.list_workflows(f'WorkflowId = "{run_id}"')]
    assert len(executions) == 1
    assert (await api_run(service, run_id))["status"] == "completed"


async def test_a_run_cancelled_before_its_start_is_made_never_starts(
    service: Service, engine: AsyncEngine,
) -> None:
    run_id = await _queued_run(service, engine, "{}", due_in=timedelta(hours=1))

    cancelled = await service.http.post(f"/api/workflows/runs/{run_id}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    run = cancelled.json()["run"]
    assert run["status"] == "cancelled"
    assert run["error"]["type"] == "cancelled"
    assert "before it started" in run["error"]["message"]
    assert await RunStarts(engine).queued([run_id]) == set()
    again = await service.http.post(f"/api/workflows/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_finished", again.text


async def test_a_workers_dispatcher_takes_only_starts_its_api_left(
    store: Store, engine: AsyncEngine,
) -> None:
    # No API here: a start queued by one, and a worker's backstop claim (min age 1 s).
    workflow, _ = await store.create_workflow(
        "dev", WorkflowDefinition.model_validate(echo(unique_slug("backstop"))))
    run_id = str(uuid.uuid4())
    await store.create_run(RunRecord(run_id=run_id, environment="dev",
                                     workflow_id=str(workflow.id), workflow_version=1,
                                     status="pending"), start="{}")
    starts = RunStarts(engine)
    try:
        fresh = await starts.claim_due(["dev"], 10, 30, min_age_seconds=1)
        await asyncio.sleep(1.2)
        left = await starts.claim_due(["dev"], 10, 30, min_age_seconds=1)

        assert run_id not in {c.run_id for c in fresh}
        assert run_id in {c.run_id for c in left}
    finally:
        await starts.done(run_id)
