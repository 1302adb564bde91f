"""The ``transform_step`` activity: pass the mapped input through, or reshape it with JMESPath.

Seed 000 transforms "pass through input"; an optional ``expression`` (https://jmespath.org)
selects and reshapes it, e.g. ``{titles: results[].title, first: results[0].url}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import jmespath
from jmespath.exceptions import JMESPathError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from definition.expressions import compile_expression, describe
from schema.activities import (
    TransformRequest,
    TransformStepRequest,
    TransformStepResult,
)
from schema.errors import ErrorType
from schema.run import RunRecord, StepRecord

log = logging.getLogger("promptpilot.transform")

# The step's own mirror write is best effort: if Postgres is slow or down it gives up
# quickly and the interpreter writes the record through its retried mirror activity.
SELF_MIRROR_TIMEOUT_SECONDS = 2.0

class StepWriter(Protocol):
    """Where a transform writes its record (``Store.upsert_steps``)."""

    def __call__(self, records: Sequence[StepRecord],
                 run: RunRecord | None = None) -> Awaitable[None]: ...

def evaluate(request: TransformRequest) -> Any:
    """The step's expression over its input; without one, the input unchanged."""
    if request.expression is None:
        return request.input
    if problem := compile_expression(request.expression):
        raise _error(request.expression, problem)
    try:
        return jmespath.search(request.expression, request.input)
    except JMESPathError as err:
        raise _error(request.expression, describe(err)) from None


class TransformActivities:
    """The interpreter's transform step: a local activity that mirrors its own record."""

    def __init__(self, write_steps: StepWriter) -> None:
        self._write_steps = write_steps

    @activity.defn(name="transform_step")
    async def transform_step(self, request: TransformStepRequest) -> TransformStepResult:
        """Evaluate, then write ``pending`` and this step's completed record in one trip.

        Times come from this activity's clock: a chain of local activities shares one
        workflow task, in which ``workflow.now()`` does not move.
        """
        attempt = activity.info().attempt
        started = datetime.now(UTC)
        output = evaluate(request)
        finished = datetime.now(UTC)
        result = TransformStepResult(output=output, attempt=attempt, started_at=started,
                                     finished_at=finished)
        if request.record is None:
            return result
        record = request.record.model_copy(update={
            "status": "completed", "output": output, "attempts": attempt,
            "started_at": started, "finished_at": finished})
        try:
            async with asyncio.timeout(SELF_MIRROR_TIMEOUT_SECONDS):
                await self._write_steps([*request.pending, record], run=request.run)
        except Exception as exc:  # any failure: the interpreter's mirror activity writes it
            log.warning("step %s of run %s: own mirror write failed (%s); the interpreter "
                        "will write it", request.step_id, request.run_id, type(exc).__name__)
            return result
        result.mirrored = True
        metrics.steps_written([record])
        return result


def _error(expression: str, problem: str) -> ApplicationError:
    return ApplicationError(
        f"JMESPath expression {expression!r} failed: {problem}",
        {"expression": expression, "problem": problem},
        type=ErrorType.TRANSFORM,
        non_retryable=True,
    )
