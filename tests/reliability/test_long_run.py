"""The schema's maximum, 2,000 steps, in one run: under Temporal's history limits.

The door refuses more than ``limits.max_steps`` (500 by default) steps; this run raises the
setting to show the interpreter's own headroom.
"""

from __future__ import annotations

import time

import pytest

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from schema.limits import LimitsSettings
from tests.conftest import Service, unique_slug
from tests.reliability.conftest import (
    Record,
    assert_exactly_once,
    transform_chain,
    wait_row_status,
)

STEPS = 2000
EVENT_LIMIT, EVENT_WARN, BYTE_LIMIT = 51_200, 10_240, 50 * 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The step limit at the schema's own cap."""
    limits = LimitsSettings(**{**settings.limits.model_dump(), "max_steps": STEPS})
    return settings.model_copy(update={"limits": limits})


@pytest.mark.timeout(420)
async def test_2000_step_run_fits_the_history_limits(service: Service, record: Record) -> None:
    slug = unique_slug("long")
    await service.create_workflow(transform_chain(slug, STEPS))
    began = time.monotonic()
    started = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                json={"input": {"topic": "long"}})
    run_id = started.json()["run"]["id"]
    status = await wait_row_status(service.store.engine, run_id, 400)
    seconds = time.monotonic() - began
    assert status == "completed", status
    await assert_exactly_once(service.store.engine, run_id, [f"t{i}" for i in range(1, STEPS + 1)])

    client = await connect(service.settings, "dev")
    handle = client.get_workflow_handle(run_id)
    events, size, runs = 0, 0, 0
    # Follow continue-as-new, if the interpreter uses it, and count every run's history.
    run_ids: list[str | None] = [None]
    while run_ids:
        history = await client.get_workflow_handle(run_id, run_id=run_ids.pop()).fetch_history()
        runs += 1
        events += len(history.events)
        size += sum(e.ByteSize() for e in history.events)
        last = history.events[-1]
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            run_ids.append(last.workflow_execution_continued_as_new_event_attributes
                           .new_execution_run_id)
    largest = len((await handle.fetch_history()).events)
    assert largest < EVENT_LIMIT
    assert size < BYTE_LIMIT
    record(seconds, fault=f"{STEPS}-step run", historyEvents=events,
           eventsPerStep=round(events / STEPS, 2), historyBytes=size, historyRuns=runs,
           largestHistoryEvents=largest, overWarnThreshold=largest > EVENT_WARN,
           stepsPerSecond=round(STEPS / seconds, 1))
