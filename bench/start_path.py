"""The start path beside Temporal's own: StartWorkflowExecution timed from a client, and how
long a run accepted by the API waits for its start (the dispatcher's lag)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.start_dispatcher import start_workflow
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from schema.definition import WorkflowDefinition
from schema.run import RunWorkflowInput


async def temporal_starts(settings: Settings, workflow: tuple[str, WorkflowDefinition],
                          count: int, warmup: int) -> list[float]:
    """Seconds each of ``count`` sequential starts took (warm-up dropped): the dispatcher's
    own call and options, on a client with no worker (so no eager start: as from the API)."""
    client = await connect(settings, "dev", own=True)
    workflow_id, definition = workflow
    latencies: list[float] = []
    for n in range(count + warmup):
        run_input = RunWorkflowInput(
            run_id=str(uuid.uuid4()), environment="dev", workflow_id=workflow_id,
            workflow_slug=definition.id, workflow_version=1, definition=definition,
            input={"topic": "temporal", "n": n}, mirror=False)
        began = time.perf_counter()
        await start_workflow(client, run_input, settings.temporal.task_queue, 30)
        if n >= warmup:
            latencies.append(time.perf_counter() - began)
    return latencies


async def dispatch_lags(settings: Settings, engine: AsyncEngine, workflow_id: str,
                        since: datetime, count: int, within: float = 60) -> list[float]:
    """For the runs the API accepted since ``since``: seconds from the run's row to the
    server's start of its workflow (its execution's start time in visibility)."""
    query = text("select id, created_at from workflow_runs "
                 "where workflow_id = :w and created_at >= :since and trigger = 'api'")
    async with engine.connect() as db:
        created = {str(r[0]): r[1] for r in (await db.execute(
            query, {"w": uuid.UUID(workflow_id), "since": since})).all()}
    client = await connect(settings, "dev", own=True)
    deadline = time.monotonic() + within
    while True:
        started = {e.id: e.start_time async for e in client.list_workflows(
            f'StartTime >= "{since.isoformat()}"') if e.id in created and e.start_time}
        if len(started) >= min(count, len(created)) or time.monotonic() > deadline:
            return [(started[i] - created[i]).total_seconds() for i in started]
        await asyncio.sleep(0.5)
