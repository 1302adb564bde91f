"""`GET /api/workflows/runs/{runId}/events`: a run's step transitions as Server-Sent Events.

Each event is `step` (one step transition), `delta` (text an llm or agent step is streaming
from its provider, sent while the step runs and before its finished `step` event) or `run`
(a run status); the last one is `run` with the finished run in full, then the stream closes.
Deltas are not stored: a subscriber sees the text streamed after it subscribed. A late
subscriber first gets the current state of every step, then live transitions (Postgres
LISTEN/NOTIFY through RunEventHub). Each transition is sent once and never goes backwards:
a step's status only moves pending -> running -> finished. If no notification arrives for a
while the tables are read again, so a lost LISTEN connection only slows the stream down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from api.deps import CurrentKey, StateDep
from api.errors import not_found
from api.presenters import as_object, run_public
from api.state import AppState
from schema.run import TERMINAL_RUN_STATUSES
from store.events import RunEvent, RunEventHub
from store.tables import StepRow

router = APIRouter(prefix="/api/workflows/runs", tags=["runs"])
RESYNC_SECONDS = 2.0
_RANK = {"pending": 0, "running": 1}


def _rank(status: str | None) -> int:
    return -1 if status is None else _RANK.get(status, 2)


def _step_event(row: StepRow) -> RunEvent:
    error = (as_object(row.error) or {}).get("message")
    return {"kind": "step", "runId": str(row.run_id), "stepId": row.step_id,
            "stepIndex": row.step_index, "status": row.status, "attempts": row.attempts,
            "tokensIn": row.tokens_in, "tokensOut": row.tokens_out, "cost": row.cost,
            "error": error}


class _Stream:
    """The state of one subscriber: what it has been sent so far."""

    def __init__(self, state: AppState, environment: str, run_id: uuid.UUID) -> None:
        self.state, self.environment, self.run_id = state, environment, run_id
        self.steps: dict[str, str] = {}
        self.run_status: str | None = None
        self.sequence = 0

    def _sse(self, kind: str, data: dict[str, Any]) -> dict[str, str]:
        self.sequence += 1
        return {"event": kind, "id": str(self.sequence), "data": json.dumps(data, default=str)}

    def accept(self, event: RunEvent) -> list[dict[str, str]]:
        """The SSE messages a notification (or a row read) adds; empty if already sent."""
        if event.get("kind") == "delta":
            # Text of a step still running; once its finished event went out, the stored
            # output says it all.
            if _rank(self.steps.get(str(event.get("stepId")))) >= _rank("completed"):
                return []
            return [self._sse("delta", {k: v for k, v in event.items() if k != "kind"})]
        status = str(event.get("status"))
        if event.get("kind") == "step":
            step_id = str(event.get("stepId"))
            if _rank(status) <= _rank(self.steps.get(step_id)):
                return []
            self.steps[step_id] = status
            return [self._sse("step", event)]
        if status in TERMINAL_RUN_STATUSES or _rank(status) <= _rank(self.run_status):
            return []  # the final status is sent by `final`, after every step
        self.run_status = status
        return [self._sse("run", {"runId": str(self.run_id), "status": status})]

    async def resync(self) -> tuple[list[dict[str, str]], bool]:
        """Messages for whatever the tables show that was not sent yet; True once finished."""
        store = self.state.store
        run = await store.get_run(self.environment, self.run_id)
        if run is None:
            return [], True
        messages = self.accept({"kind": "run", "status": run.status})
        for row in await store.get_steps(self.run_id):
            messages += self.accept(_step_event(row))
        return messages, run.status in TERMINAL_RUN_STATUSES

    async def final(self) -> dict[str, str]:
        """The closing `run` event: the finished run with its steps."""
        store = self.state.store
        run = await store.get_run(self.environment, self.run_id)
        if run is None:
            return self._sse("run", {"runId": str(self.run_id), "status": "unknown"})
        workflow = await store.get_workflow_by_id(run.workflow_id)
        public = run_public(run, await store.get_steps(run.id),
                            workflow.slug if workflow else None)
        return self._sse("run", public.model_dump(mode="json"))


async def _events(stream: _Stream, hub: RunEventHub) -> AsyncIterator[dict[str, str]]:
    async with hub.subscribe(str(stream.run_id)) as queue:
        # Subscribed first, then read: nothing committed in between can be missed.
        messages, finished = await stream.resync()
        for message in messages:
            yield message
        while not finished:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=RESYNC_SECONDS)
            except TimeoutError:
                messages, finished = await stream.resync()
            else:
                messages = stream.accept(event)
                if event.get("kind") == "run" and event.get("status") in TERMINAL_RUN_STATUSES:
                    # The run row is written after its steps; a last read catches any step
                    # transition whose notification this subscriber never saw.
                    extra, finished = await stream.resync()
                    messages += extra
            for message in messages:
                yield message
        yield await stream.final()


def run_event_hub(request: Request) -> RunEventHub:
    """The app's hub (made in the lifespan), or one made now for apps built without it."""
    hub: RunEventHub | None = getattr(request.app.state, "run_events", None)
    if hub is None:
        services: AppState = request.app.state.services
        hub = request.app.state.run_events = RunEventHub(services.store.engine)
    return hub


@router.get("/{run_id}/events", response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`step`, `delta` and `run` events; the last "
                                            "is the run"}})
async def run_events(run_id: uuid.UUID, request: Request, state: StateDep,
                     key: CurrentKey) -> EventSourceResponse:
    """Stream a run's step transitions live, with the text of llm and agent steps as they
    write it (`delta`: `stepId`, `text`, `attempt`, `seq`, and `turn` of an agent step or
    `repair` of a repair call; text starts over when `attempt`, `turn` or `repair` changes),
    ending with its final status."""
    if await state.store.get_run(key.environment, run_id) is None:
        raise not_found(f"run '{run_id}'")
    stream = _Stream(state, key.environment, run_id)
    return EventSourceResponse(_events(stream, run_event_hub(request)), ping=15)


async def close_hub(app_state: Any) -> None:
    """Close the hub at shutdown if one was made."""
    hub: RunEventHub | None = getattr(app_state, "run_events", None)
    if hub is not None:
        with contextlib.suppress(OSError):
            await hub.aclose()
