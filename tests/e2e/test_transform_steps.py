"""Transforms run as local activities that write their own mirror row.

What a user sees: no extra round trip per transform in the Temporal history, a step timeline
that moves forward step by step (though ``workflow.now()`` stands still while a chain of
local activities runs), and every step mirrored exactly once, even when the step's own write
cannot reach Postgres.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment

from activities.transform import SELF_MIRROR_TIMEOUT_SECONDS, TransformActivities
from devstack.process import free_port
from promptpilot.temporal import connect
from schema.activities import TransformStepRequest, TransformStepResult
from schema.run import StepRecord
from store.database import make_engine
from store.runs import Store
from tests.conftest import Service, unique_slug


def chain(slug: str, steps: int) -> dict[str, Any]:
    """``steps`` transforms, each adding one to the previous count."""
    body = [{"id": f"t{i}", "type": "transform", "expression": "{n: n}",
             "inputMapping": {"n": "input.n" if i == 1 else f"outputs.t{i - 1}.n"}}
            for i in range(1, steps + 1)]
    return {"id": slug, "name": "transform chain",
            "variables": [{"name": "n", "type": "integer", "required": True}], "steps": body}


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_transform_chain_runs_locally_with_a_forward_timeline(service: Service) -> None:
    slug = unique_slug("chain")
    await service.create_workflow(chain(slug, 6))

    response = await service.run(slug, {"n": 7})

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "completed"
    assert run["outputJson"] == {"n": 7}
    steps = run["steps"]
    assert [s["stepId"] for s in steps] == [f"t{i}" for i in range(1, 7)]
    assert all(s["status"] == "completed" and s["attempts"] == 1 for s in steps)
    # Each step starts after the one before it finished, and the run ends after the last.
    for before, after in pairwise(steps):
        assert _time(before["startedAt"]) <= _time(before["finishedAt"]) \
            <= _time(after["startedAt"])
    assert _time(steps[-1]["finishedAt"]) <= _time(run["finishedAt"])
    assert _time(run["startedAt"]) <= _time(steps[0]["startedAt"])

    # In the Temporal UI the transforms are local-activity markers: no activity task each.
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    kinds = [event.event_type for event in history.events]
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    assert kinds.count(EventType.EVENT_TYPE_MARKER_RECORDED) >= 6
    assert len(kinds) < 6 * 3  # a regular activity per step would need 3 events at least
    # The revision is in the run's input: no patch marker, no search attribute upsert.
    assert EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES not in kinds

    # One row per step in the mirror, written by the step itself.
    async with service.store.engine.connect() as db:
        rows = (await db.execute(text(
            "select step_id, count(*) from workflow_run_steps where run_id = :id "
            "group by step_id"), {"id": uuid.UUID(run["id"])})).all()
    assert sorted(rows) == [(f"t{i}", 1) for i in range(1, 7)]


async def test_a_failing_transform_is_mirrored_as_failed(service: Service) -> None:
    slug = unique_slug("chain")
    definition = chain(slug, 3)
    definition["steps"][1]["expression"] = "to_number(n, n)"  # wrong arity: fails when run
    await service.create_workflow(definition)

    response = await service.run(slug, {"n": 1})

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "failed"
    by_id = {s["stepId"]: s for s in run["steps"]}
    assert by_id["t1"]["status"] == "completed"
    assert by_id["t2"]["status"] == "failed"
    assert by_id["t2"]["error"]["type"] == "transform_error"
    assert "t3" not in by_id


async def test_own_write_gives_up_quickly_when_postgres_is_unreachable() -> None:
    # A real engine pointed at a port where nothing listens: the step still answers, says its
    # record is not written, and the interpreter writes it through its retried mirror activity.
    engine = make_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none",
                         pool_size=1)
    store = Store(engine)
    try:
        activities = TransformActivities(store.upsert_steps)
        record = StepRecord(run_id=str(uuid.uuid4()), environment="dev", step_id="t1",
                            step_index=0, type="transform", status="running", input={"n": 1})
        request = TransformStepRequest(run_id=record.run_id, step_id="t1", input={"n": 1},
                                       expression="n", record=record)
        began = time.monotonic()
        result: TransformStepResult = await ActivityEnvironment().run(
            activities.transform_step, request)
        elapsed = time.monotonic() - began
    finally:
        await store.aclose()
        await engine.dispose()
    assert result.output == 1
    assert result.mirrored is False
    assert result.started_at <= result.finished_at
    assert elapsed < SELF_MIRROR_TIMEOUT_SECONDS + 2
