"""`?wait`: a request waiting for its run answers from the run's record, the moment it is
final, and still learns of a run Temporal ended outside the interpreter."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowExecutionStatus

from api.launcher import wait_for
from api.state import AppState
from promptpilot.temporal import connect
from schema.run import RunRecord, StepRecord
from store.events import RunEventHub
from store.keys import ApiKeys
from store.runs import Store
from tests.conftest import Service, unique_slug
from tests.reconcile_support import wait_step, waiting
from tests.triggers_support import runs_of


async def test_a_wait_ends_when_the_final_row_is_written_not_when_a_timer_says(
        service: Service, engine: AsyncEngine) -> None:
    # No workflow in Temporal at all and no re-read within the wait: only the notification
    # of the run's final row can end it (waiting on Temporal, it ran out its 10 s: False).
    workflow = await service.create_workflow(waiting(unique_slug("recorded")))
    store = Store(engine)
    settings = service.settings.model_copy(deep=True)
    settings.api.run_wait_check_seconds = 60
    state = AppState(settings=settings, store=store, keys=ApiKeys(engine))
    run_id = str(uuid.uuid4())
    record = RunRecord(run_id=run_id, environment="dev", workflow_id=workflow["id"],
                       workflow_version=1, status="running", input={})
    try:
        await store.upsert_run(record)
        waited = asyncio.create_task(wait_for(state, "dev", run_id, 10))
        await asyncio.sleep(0.5)
        assert not waited.done()  # running: the wait goes on

        await store.upsert_run(record.model_copy(update={"status": "completed",
                                                         "output": {"ok": True}}))

        assert await waited is True
    finally:
        await state.run_events.aclose()
        await store.aclose()


async def test_a_wait_answers_for_a_run_terminated_in_temporal(service: Service) -> None:
    # The interpreter writes nothing for a terminated run: the wait's own re-read asks
    # Temporal (as a GET does) and the request answers 200 with the run failed, not 202 at
    # the end of its wait.
    slug = unique_slug("terminated")
    await service.create_workflow(waiting(slug))
    request = asyncio.create_task(service.http.post(
        f"/api/workflows/{slug}/run", params={"wait": 30}, json={"input": {}}))
    run_id = ""
    while not run_id:
        found = await runs_of(service, slug)
        run_id = found[0]["id"] if found else ""
        await asyncio.sleep(0.05)
    await wait_step(service, run_id, "review", "waiting")
    client = await connect(service.settings, "dev")

    await client.get_workflow_handle(run_id).terminate(reason="operator 7 stopped it")

    answered = await request
    assert answered.status_code == 200, answered.text
    run = answered.json()["run"]
    assert run["status"] == "failed"
    assert "operator 7 stopped it" in run["error"]["message"]


async def test_a_wait_answers_finished_only_once_temporal_has_closed_the_run_too(
        service: Service) -> None:
    # The final row is written a moment before the workflow completes: an answer at the row
    # alone would say `completed` while Temporal still says running (seen before the wait
    # asked Temporal for the close).
    slug = unique_slug("agrees")
    await service.create_workflow({"id": slug, "name": "quick", "steps": [
        {"id": "t1", "type": "transform", "expression": "{ok: `true`}"}]})
    client = await connect(service.settings, "dev")
    for _ in range(10):
        answered = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 30},
                                           json={"input": {}})
        assert answered.status_code == 200, answered.text
        run_id = answered.json()["run"]["id"]
        description = await client.get_workflow_handle(run_id).describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED


async def test_a_wait_hears_only_its_runs_end_and_a_stream_hears_everything(
        service: Service, engine: AsyncEngine) -> None:
    # A waiting request takes the run's final row alone (the channel of ends, not every step
    # transition of every run); a live stream still takes the steps and the end.
    workflow = await service.create_workflow(waiting(unique_slug("channels")))
    store = Store(engine)
    hub = RunEventHub(engine)
    run_id = str(uuid.uuid4())
    record = RunRecord(run_id=run_id, environment="dev", workflow_id=workflow["id"],
                       workflow_version=1, status="running", input={})
    step = StepRecord(run_id=run_id, environment="dev", step_id="prep", step_index=0,
                      type="transform", status="completed", output={"ok": True})
    try:
        async with hub.subscribe(run_id, ends_only=True) as ends, \
                hub.subscribe(run_id) as everything:
            await store.upsert_run(record)
            await store.upsert_steps([step])
            await store.upsert_run(record.model_copy(update={"status": "completed"}))

            heard = [await asyncio.wait_for(everything.get(), 10) for _ in range(3)]
            end = await asyncio.wait_for(ends.get(), 10)
            assert ends.empty()
        assert [(e["kind"], e["status"]) for e in heard] == [
            ("run", "running"), ("step", "completed"), ("run", "completed")]
        assert (end["kind"], end["status"]) == ("run", "completed")
    finally:
        await hub.aclose()
        await store.aclose()
