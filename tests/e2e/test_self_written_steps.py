"""llm and tool steps write their own mirror rows from their activities.

What a user sees: the same rows as before (running while the call is out, then the finished
record), with fewer local activities in the Temporal history (none around a model or tool
call), and a record that stays true when an attempt is given up on or Postgres is away.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment

from activities.self_mirror import SELF_MIRROR_TIMEOUT_SECONDS, SelfMirror
from activities.tools import ToolActivities
from devstack.process import free_port
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from schema.activities import StepSelfWrite, ToolRequest, ToolResult
from schema.run import StepRecord, record_digest
from store.database import make_engine
from store.runs import Store
from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery
from tests.fakes.llm_server import FakeLlmServer, ok, status


def _markers(events: list[Any]) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED for e in events)


async def _history(service: Service, run_id: str) -> list[Any]:
    client = await connect(service.settings, "dev")
    return list((await client.get_workflow_handle(run_id).fetch_history()).events)


async def _rows(service: Service, run_id: str) -> dict[str, dict[str, Any]]:
    async with service.store.engine.connect() as db:
        rows = (await db.execute(text(
            "select step_id, status, attempts, retry_count, tokens_in, rendered, tool_trace, "
            "output_json, started_at, finished_at from workflow_run_steps where run_id = :id"),
            {"id": uuid.UUID(run_id)})).mappings().all()
    return {row["step_id"]: dict(row) for row in rows}


async def test_llm_and_tool_steps_need_no_mirror_local_activity(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("own-rows")
    await service.create_workflow(feed_discovery(slug))
    llm.enqueue(ok('{"query": "durable feeds"}', tokens_in=21, tokens_out=5))

    response = await service.run(slug, {"interests": "AI"})

    run = response.json()["run"]
    assert run["status"] == "completed", run
    rows = await _rows(service, run["id"])
    assert {k: v["status"] for k, v in rows.items()} == {
        "step1": "completed", "step2": "completed", "step3": "completed"}
    llm_row, tool_row = rows["step1"], rows["step2"]
    assert llm_row["output_json"] == {"query": "durable feeds"}
    assert (llm_row["attempts"], llm_row["tokens_in"]) == (1, 21)
    assert "feeds about AI" in llm_row["rendered"]["user"]
    assert tool_row["tool_trace"][0]["toolName"] == "web_search"
    assert tool_row["output_json"]["results"]
    for row in (llm_row, tool_row):
        assert row["started_at"] <= row["finished_at"]
    assert llm_row["finished_at"] <= tool_row["started_at"]
    # What the API answers is what the rows hold.
    by_id = {s["stepId"]: s for s in run["steps"]}
    assert by_id["step1"]["tokensIn"] == 21
    assert by_id["step2"]["toolTrace"] == tool_row["tool_trace"]

    # Three local activities in all: the run's "running" row (with the first step's), the
    # transform (which writes itself) and the run's end. With a mirror write around the tool
    # call, or the interpreter rewriting a finished row its activity wrote, there are more.
    events = await _history(service, run["id"])
    assert _markers(events) == 3


async def test_a_retried_call_records_the_attempt_that_answered(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("own-rows")
    definition = feed_discovery(slug)
    definition["steps"][0]["retryConfig"] = {"maxAttempts": 3, "initialIntervalSeconds": 0.1}
    await service.create_workflow(definition)
    llm.enqueue(status(500, "overloaded"), ok('{"query": "second try"}'))

    run = (await service.run(slug, {"interests": "AI"})).json()["run"]

    assert run["status"] == "completed", run
    row = (await _rows(service, run["id"]))["step1"]
    assert (row["status"], row["attempts"], row["retry_count"]) == ("completed", 2, 1)
    assert row["output_json"] == {"query": "second try"}
    assert _markers(await _history(service, run["id"])) == 3


async def test_a_failed_call_is_recorded_failed_by_the_interpreter(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("own-rows")
    await service.create_workflow(feed_discovery(slug))
    llm.enqueue(status(400, "bad prompt"))

    run = (await service.run(slug, {"interests": "AI"})).json()["run"]

    assert run["status"] == "failed"
    rows = await _rows(service, run["id"])
    assert rows["step1"]["status"] == "failed"
    assert set(rows) == {"step1"}


def _record(run_id: str, status: str = "running", attempts: int = 1) -> StepRecord:
    return StepRecord(run_id=run_id, environment="dev", step_id="s1", step_index=0,
                      type="llm", status=status, attempts=attempts, input={"n": 1},
                      started_at=datetime.now(UTC))


async def _a_run(service: Service) -> str:
    slug = unique_slug("own-rows")
    await service.create_workflow(feed_discovery(slug))
    run = (await service.run(slug, {"interests": "AI"})).json()["run"]
    return str(run["id"])


async def test_a_given_up_attempt_never_overwrites_a_later_one(
        service: Service, llm: FakeLlmServer) -> None:
    # Attempt 1 timed out but its call still answers, after attempt 2 started: its finished
    # write is left alone. A row the interpreter already finished is left alone too.
    llm.enqueue(ok('{"query": "q"}'))
    run_id = await _a_run(service)
    store = service.store
    await store.upsert_steps([_record(run_id, attempts=2)])

    late = _record(run_id, "completed", attempts=1).model_copy(update={"output": "stale"})
    assert await store.finish_step(late) is False
    current = _record(run_id, "completed", attempts=2).model_copy(update={"output": "fresh"})
    assert await store.finish_step(current) is True
    await store.upsert_steps([current.model_copy(update={"status": "failed"})])
    assert await store.finish_step(current) is False

    row = (await _rows(service, run_id))["s1"]
    assert (row["status"], row["output_json"]) == ("failed", "fresh")


async def test_a_retry_after_a_lost_answer_shows_running_again(
        service: Service, llm: FakeLlmServer) -> None:
    # Attempt 1 wrote its answer, then its worker died before Temporal heard of it: attempt 2
    # runs, and the row says so. A cancelled or failed row is never reopened, and a late
    # start of an earlier attempt never rolls a later one back.
    llm.enqueue(ok('{"query": "q"}'))
    run_id = await _a_run(service)
    store = service.store
    await store.finish_step(_record(run_id, "completed", attempts=1))

    await store.start_step(_record(run_id, attempts=2))
    row = (await _rows(service, run_id))["s1"]
    assert (row["status"], row["attempts"]) == ("running", 2)

    await store.start_step(_record(run_id, attempts=1))
    assert (await _rows(service, run_id))["s1"]["attempts"] == 2

    for final in ("cancelled", "failed"):
        await store.upsert_steps([_record(run_id, final, attempts=0)])
        await store.start_step(_record(run_id, attempts=3))
        assert (await _rows(service, run_id))["s1"]["status"] == final


async def test_a_tool_answers_when_its_own_writes_cannot_reach_postgres(
        settings: Settings) -> None:
    # Postgres unreachable: the tool still answers, says it wrote nothing (the interpreter
    # then writes the record through its retried mirror activity), within the write's timeout.
    engine = make_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none",
                         pool_size=1)
    store = Store(engine)
    tools = ToolActivities(settings, mirror=SelfMirror(store))
    record = _record(str(uuid.uuid4())).model_copy(update={"type": "tool"})
    request = ToolRequest(run_id=record.run_id, step_id="s1", tool_name="web_search",
                          args={"query": "durable execution", "limit": 2},
                          mirror=StepSelfWrite(record=record))
    try:
        began = time.monotonic()
        result: ToolResult = await ActivityEnvironment().run(tools.call, request)
        elapsed = time.monotonic() - began
    finally:
        await tools.aclose()
        await store.aclose()
        await engine.dispose()
    assert result.output["results"]
    assert result.mirrored is None
    assert elapsed < 2 * SELF_MIRROR_TIMEOUT_SECONDS + 2


def test_the_digest_tells_records_apart() -> None:
    record = _record(str(uuid.uuid4()))
    assert record_digest(record) == record_digest(StepRecord.model_validate_json(
        record.model_dump_json()))
    assert record_digest(record) != record_digest(record.model_copy(update={"attempts": 2}))
