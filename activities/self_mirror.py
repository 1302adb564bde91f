"""A regular activity's own writes of its step's row (``StepSelfWrite``).

An llm or tool step whose activity writes its own rows needs no mirror local activity of its
own: the "running" row is written when an attempt starts (unless the interpreter wrote it
with records that were waiting, such as the run's own row) and the finished row when it
answers, each in one round trip, best effort. A write that fails or takes over
``SELF_MIRROR_TIMEOUT_SECONDS`` costs the call nothing: the activity says it wrote nothing
and the interpreter writes the record through its retried mirror activity.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from activities import metrics
from schema.activities import LlmRequest, LlmResult, StepSelfWrite, ToolResult
from schema.run import StepRecord, record_digest
from store.runs import Store

log = logging.getLogger("promptpilot.mirror")

SELF_MIRROR_TIMEOUT_SECONDS = 2.0


class SelfMirror:
    """Writes the rows of the step an activity is working on."""

    def __init__(self, store: Store | None) -> None:
        self._store = store

    async def started(self, own: StepSelfWrite | None, attempt: int) -> None:
        """The step's "running" row for this attempt (the first attempt's, unless the
        interpreter wrote it)."""
        if own is None or self._store is None or (own.started and attempt == 1):
            return
        record = own.record.model_copy(update={"attempts": attempt})
        try:
            async with asyncio.timeout(SELF_MIRROR_TIMEOUT_SECONDS):
                await self._store.start_step(record)
        except Exception as exc:  # the call goes on
            _failed(record, "running", exc)

    async def finished(self, own: StepSelfWrite | None, record: StepRecord) -> str | None:
        """The step's finished row; the digest of what landed, or None."""
        if own is None or self._store is None:
            return None
        try:
            async with asyncio.timeout(SELF_MIRROR_TIMEOUT_SECONDS):
                landed = await self._store.finish_step(record)
        except Exception as exc:  # the interpreter writes it
            _failed(record, record.status, exc)
            return None
        if not landed:
            return None
        metrics.steps_written([record])
        return record_digest(record)


def llm_completed(own: StepSelfWrite, request: LlmRequest, result: LlmResult) -> StepRecord:
    """A one-model llm step's finished record, as the interpreter makes it of ``result``."""
    rendered: dict[str, Any] = {"system": request.system, "user": request.user}
    if own.prompt_ref is not None:
        rendered["promptRef"] = own.prompt_ref
    label = f"{request.provider}/{request.model}"
    return _completed(own, result.finished_at, {
        "output": result.output, "attempts": result.attempt, "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out, "cached_tokens": result.cached_tokens,
        "cost": result.cost, "model": request.model, "provider": request.provider,
        "rendered": rendered, "warnings": list(result.warnings),
        "attempt_log": [e.model_dump(mode="json") for e in result.attempt_log] or None,
        "repairs": [{**r.model_dump(mode="json"), "model": label}
                    for r in result.repairs] or None,
    })


def tool_completed(own: StepSelfWrite, result: ToolResult) -> StepRecord:
    """A tool step's finished record, as the interpreter makes it of ``result``."""
    return _completed(own, result.finished_at, {
        "output": result.output, "attempts": result.attempt,
        "tool_trace": [result.trace.model_dump(mode="json")]})


def _completed(own: StepSelfWrite, finished_at: Any, work: dict[str, Any]) -> StepRecord:
    return own.record.model_copy(update={"status": "completed", "finished_at": finished_at,
                                         **work})


def _failed(record: StepRecord, status: str, exc: Exception) -> None:
    log.warning("step %s of run %s: own %s write failed (%s); the interpreter will write it",
                record.step_id, record.run_id, status, type(exc).__name__)
