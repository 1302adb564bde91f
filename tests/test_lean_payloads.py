"""What the interpreter's activities hand Temporal is kept in every run's history: nothing in
it travels twice, and every model reads back to what it was."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from temporalio.converter import DataConverter

from promptpilot.settings import PayloadSettings, Settings
from promptpilot.temporal import data_converter
from schema.activities import LlmResult, StepSelfWrite, ToolResult, ToolTrace
from schema.run import StepRecord, record_digest

SNIPPET = "a long search result snippet that should be in the history only once"


def _converter() -> DataConverter:
    return data_converter(Settings(_env_file=None, environment="dev",
                                   payloads=PayloadSettings(storage="none")))


async def _round_trip(value: Any) -> tuple[Any, bytes]:
    converter = _converter()
    payloads = await converter.encode([value])
    return (await converter.decode(payloads, [type(value)]))[0], payloads[0].data


async def test_a_tool_result_holds_its_output_once() -> None:
    output = {"results": [{"snippet": SNIPPET}]}
    result = ToolResult(output=output, trace=ToolTrace(
        tool_name="web_search", args={"query": "q"}, result=output, duration_ms=3.5))

    back, data = await _round_trip(result)

    assert back == result
    assert back.trace.result == output
    assert data.count(SNIPPET.encode()) == 1


async def test_a_trace_of_something_else_keeps_its_own_result() -> None:
    result = ToolResult(output={"n": 1}, trace=ToolTrace(
        tool_name="t", args={}, result={"omitted": "12 characters"}, duration_ms=1.0))

    back, _ = await _round_trip(result)

    assert back.trace.result == {"omitted": "12 characters"}


async def test_a_text_answer_holds_its_text_once() -> None:
    answer = LlmResult(output=SNIPPET, text=SNIPPET, provider="openai", model="gpt-4o-mini")
    structured = LlmResult(output={"query": "q"}, text='{"query": "q"}', provider="openai",
                           model="gpt-4o-mini")

    back, data = await _round_trip(answer)
    back_structured, _ = await _round_trip(structured)

    assert back == answer
    assert data.count(SNIPPET.encode()) == 1
    assert back_structured.text == '{"query": "q"}'


async def test_a_self_write_carries_only_what_differs_from_the_defaults() -> None:
    run_id = str(uuid.uuid4())
    record = StepRecord(run_id=run_id, environment="dev", step_id="plan", step_index=0,
                        type="llm", status="running", input={"topic": "x"},
                        started_at=datetime.now(UTC))
    own = StepSelfWrite(record=record)

    back, data = await _round_trip(own)

    assert back == own
    assert record_digest(back.record) == record_digest(record)
    assert b"tokensIn" not in data
    assert b"cachedFrom" not in data
