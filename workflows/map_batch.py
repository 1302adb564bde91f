"""The child workflow that runs one batch of a map step's items. Deterministic.

Each item runs the map's sub-steps through its own ``StepRunner`` with the mirror off (the
parent records a summary on the map step); items run ``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.control import MapBatchInput, MapBatchResult, MapItem, MapItemResult
    from schema.errors import ErrorType
    from schema.run import StepError
    from schema.usage import spend_by_model, step_spend

from definition.context import new_context
from schema.workflow_names import MAP_BATCH_WORKFLOW
from workflows.ledger import ledger_for
from workflows.runner import RunScope, StepFailed, StepRunner


@workflow.defn(name=MAP_BATCH_WORKFLOW)
class MapBatchWorkflow:
    """Runs a map step's sub-sequence for a batch of items."""

    @workflow.run
    async def run(self, batch: MapBatchInput) -> MapBatchResult:
        """Every item's result, in the batch's order; item failures do not fail the batch."""
        gate = asyncio.Semaphore(batch.concurrency)
        ledger = ledger_for(batch.max_cost_usd)  # the batch's slice, shared by its items
        prefix = workflow.info().workflow_id

        async def run_item(item: MapItem) -> MapItemResult:
            async with gate:
                runner = StepRunner(RunScope(
                    run_id=batch.run_id, environment=batch.environment,
                    id_prefix=f"{prefix}-i{item.index}", mirror=False,
                    mirror_runs=batch.mirror, approvals=False,
                    ledger=ledger, children=batch.children,
                    workflow_slug=batch.workflow_slug, llm_cache=batch.llm_cache,
                    side_effects=batch.side_effects,
                    limits=batch.limits))
                context = new_context({**batch.shared, "item": item.value,
                                       "index": item.index})
                try:
                    output = await runner.run_sequence(batch.steps, context,
                                                       parent=batch.step_id)
                except StepFailed as failed:
                    return _result(item, runner, None, failed)
                except workflow.NondeterminismError:
                    raise  # a redeploy heals it: the workflow task retries
                except Exception as exc:  # a bug fails its item, not the task
                    return _result(item, runner, None, StepFailed(StepError(
                        type=ErrorType.INTERNAL, message=f"{type(exc).__name__}: {exc}"[:1000])))
                return _result(item, runner, output, None)

        results = await asyncio.gather(*(run_item(item) for item in batch.items))
        return MapBatchResult(items=list(results))


def _result(item: MapItem, runner: StepRunner, output: object,
            failed: StepFailed | None) -> MapItemResult:
    tokens_in, tokens_out = runner.tokens()
    return MapItemResult(
        index=item.index, status="failed" if failed else "completed", output=output,
        error=failed.error if failed else None,
        failed_step_id=runner.current if failed else None, cost=runner.cost,
        tokens_in=tokens_in, tokens_out=tokens_out,
        spend=spend_by_model(step_spend(r) for r in runner.steps.values()))
