"""B2: a hand-written Temporal workflow calling the same ``transform`` activity per step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.activities import TransformRequest, TransformResult

from bench.steps import EXPRESSION


@workflow.defn(name="BenchHandWritten")
class HandWrittenWorkflow:
    """``steps`` transform activities in a row, nothing else."""

    @workflow.run
    async def run(self, steps: int, value: dict[str, Any]) -> dict[str, Any]:
        """Chain the steps."""
        for index in range(steps):
            result: TransformResult = await workflow.execute_activity(
                "transform", TransformRequest(run_id=workflow.info().workflow_id,
                                              step_id=f"t{index + 1}", input=value,
                                              expression=EXPRESSION),
                result_type=TransformResult, start_to_close_timeout=timedelta(seconds=10))
            value = result.output
        return value
