"""Payloads of any size flow on: large ones leave Temporal's history for payload storage, and
history keeps small references, so runs stay far inside Temporal's limits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok

MB = 1024 * 1024


def page_pipeline(slug: str) -> dict[str, Any]:
    """llm (writes a page) → transform (reshapes it) → llm (summarises the whole page)."""
    return {"id": slug, "name": "large page", "steps": [
        {"id": "write", "type": "llm", "model": "gpt-4o-mini", "promptUser": "Write a page"},
        {"id": "shape", "type": "transform", "expression": "{page: text, chars: length(text)}",
         "inputMapping": {"text": "outputs.write"}},
        {"id": "summarise", "type": "llm", "model": "gpt-4o-mini",
         "promptUser": "Summarise these {{chars}} characters: {{page}}",
         "inputMapping": {"page": "outputs.shape.page", "chars": "outputs.shape.chars"}},
    ]}


def big_text(size: int) -> str:
    """Text that is not one repeated byte (every line numbered), ``size`` characters long."""
    lines, total, n = [], 0, 0
    while total < size:
        line = f"line {n:07d}: the quick brown fox jumps over the lazy dog\n"
        lines.append(line)
        total += len(line)
        n += 1
    return "".join(lines)[:size]


def history_bytes(history: WorkflowHistory) -> int:
    """What the run's history weighs on the Temporal server."""
    return sum(event.ByteSize() for event in history.events)


def llm_step_bytes(history: WorkflowHistory) -> list[int]:
    """Bytes of history each llm activity added (its scheduled, started, completed events)."""
    scheduled = {e.event_id: e for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "llm_call"}
    sizes = {event_id: event.ByteSize() for event_id, event in scheduled.items()}
    for event in history.events:
        started = event.activity_task_started_event_attributes.scheduled_event_id
        completed = event.activity_task_completed_event_attributes.scheduled_event_id
        for scheduled_id in (started, completed):
            if scheduled_id in sizes:
                sizes[scheduled_id] += event.ByteSize()
    return list(sizes.values())


async def test_5mb_answer_flows_through_transform_into_the_next_prompt(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("big")
    await service.create_workflow(page_pipeline(slug))
    page = big_text(5 * MB)
    llm.enqueue(ok(page), ok("a fox, many times"))

    response = await service.run(slug, {})

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "completed", run.get("error")
    assert run["outputJson"] == "a fox, many times"
    steps = {s["stepId"]: s for s in run["steps"]}
    assert steps["write"]["outputJson"] == page
    assert steps["shape"]["outputJson"] == {"page": page, "chars": len(page)}
    # The whole page reached the second model call, through the mapping and the template.
    prompt = llm.requests[-1].body["messages"][-1]["content"]
    assert prompt == f"Summarise these {len(page)} characters: {page}"
    assert llm.count(OPENAI_PATH) == 2

    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    assert history_bytes(history) < 500_000, history_bytes(history)
    assert all(size < 20_000 for size in llm_step_bytes(history)), llm_step_bytes(history)

    # The large payloads are in our Postgres, keyed to the run, encrypted.
    async with service.store.engine.connect() as db:
        rows = (await db.execute(text(
            "select size_bytes, data from payload_blobs where namespace = 'dev' "
            "and workflow_id = :run"), {"run": run["id"]})).all()
    assert rows
    assert max(r.size_bytes for r in rows) > 5 * MB
    assert all(b"quick brown fox" not in r.data for r in rows)


