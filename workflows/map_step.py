"""`map` steps: a sub-sequence per list item, in child workflows of batches. Deterministic.

The parent's history holds one child workflow per batch (``batchSize`` items), never the
items' own activities, so 1,000 items cost the parent ~20 children, not ~3,000 events.
``concurrency`` bounds the items in flight: ``ceil(concurrency / batchSize)`` batches run
at once, each running ``ceil(concurrency / batches in flight)`` items at a time.

Items see ``input.item`` and ``input.index`` plus the map step's mapped inputs as
``input.<name>``. The step's output is the item outputs in order (the output of each item's
last step that ran). Item steps are not mirrored as rows; the map step row carries a bounded
``mapItems`` summary (counts, batches, failed indexes, the first errors). A rerun from the
map step reuses the outputs of items that completed with the same item value.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from schema.control import MapBatchInput, MapBatchResult, MapItem, MapItemResult
    from schema.definition import MapStep
    from schema.errors import ErrorType
    from schema.run import SeedStep, StepError, StepRecord
    from schema.usage import spend_by_model

from definition.context import MappingError, resolve_path
from schema.workflow_names import MAP_BATCH_WORKFLOW
from workflows.outcome import OutcomeFailed, StepOutcome

if TYPE_CHECKING:
    from workflows.scope import Runner

MAX_LISTED_ERRORS = 20


def reusable(seed: SeedStep | None, items: list[Any]) -> dict[int, Any]:
    """Outputs of a source run's items that completed with the same value, by index."""
    if seed is None or not isinstance(seed.output, list) or not isinstance(seed.input, dict):
        return {}
    old = seed.input.get("items")
    if not isinstance(old, list):
        return {}
    failed = set(seed.failed_items or [])
    return {i: seed.output[i] for i in range(min(len(items), len(old), len(seed.output)))
            if i not in failed and old[i] == items[i]}


async def run_map(runner: Runner, step: MapStep, mapped: dict[str, Any],
                  context: dict[str, Any], record: StepRecord) -> StepOutcome:
    """Run every item (batched into child workflows) and collect the outputs in order."""
    try:
        items = resolve_path(context, step.items)
    except MappingError as exc:
        raise OutcomeFailed(StepError(type=ErrorType.MAPPING, message=f"items: {exc}")) from None
    if not isinstance(items, list):
        raise OutcomeFailed(StepError(type=ErrorType.MAPPING, message=(
            f"items: '{step.items}' is {type(items).__name__}, not a list")))
    record.input = {**mapped, "items": items}
    reused = reusable(runner.scope.partial_seeds.get(step.id), items)
    todo = [MapItem(index=i, value=v) for i, v in enumerate(items) if i not in reused]
    size = step.batch_size
    batches = [todo[k:k + size] for k in range(0, len(todo), size)]
    in_flight = max(1, math.ceil(step.concurrency / size))
    per_batch = max(1, min(size, math.ceil(step.concurrency / in_flight)))
    gate = asyncio.Semaphore(in_flight)
    ledger = runner.scope.ledger
    running = 0

    async def run_batch(number: int, batch: list[MapItem]) -> list[MapItemResult]:
        async with gate:
            # Each batch in flight gets an even slice of what is left, and gives back what
            # it did not spend: together they never pass the run's budget.
            nonlocal running
            slice_ = None if ledger is None else await ledger.grant(in_flight - running)
            running += 1
            results: list[MapItemResult] | None = None
            try:
                results = await _run_batch(number, batch,
                                           None if slice_ is None else slice_.amount)
                return results
            finally:
                running -= 1
                if ledger is not None and slice_ is not None:
                    costs = [r.cost for r in results or []]
                    unknown = results is None or any(c is None for c in costs)
                    ledger.settle(slice_, slice_.amount if unknown
                                  else sum(c or 0.0 for c in costs))

    async def _run_batch(number: int, batch: list[MapItem],
                         budget: float | None) -> list[MapItemResult]:
        request = MapBatchInput(
            run_id=runner.scope.run_id, environment=runner.scope.environment,
            step_id=step.id, steps=step.steps, shared=mapped, items=batch,
            concurrency=per_batch, mirror=runner.scope.mirror_runs,
            max_cost_usd=budget, children=runner.scope.children,
            workflow_slug=runner.scope.workflow_slug, llm_cache=runner.scope.llm_cache,
            side_effects=runner.scope.side_effects,
            limits=runner.scope.limits)
        try:
            result: MapBatchResult = await workflow.execute_child_workflow(
                MAP_BATCH_WORKFLOW, request, result_type=MapBatchResult,
                id=f"{runner.scope.id_prefix}-{step.id}-b{number}",
                static_summary=f"{step.id}: items {batch[0].index}-{batch[-1].index}")
        except ChildWorkflowError as exc:
            if isinstance(exc.cause, CancelledError):
                raise asyncio.CancelledError from exc
            cause = exc.cause  # e.g. payload_too_large: the batch's result was too big
            error = StepError(type=ErrorType.INTERNAL, message=f"batch {number}: {exc}")
            if isinstance(cause, ApplicationError):
                error = StepError(type=cause.type or ErrorType.INTERNAL,
                                  message=f"batch {number}: {cause.message}")
            # What a failed batch spent is unknown: its slice counts as spent.
            return [MapItemResult(index=i.index, status="failed", error=error, cost=None)
                    for i in batch]
        return result.items

    results = [r for batch in await asyncio.gather(
        *(run_batch(n, b) for n, b in enumerate(batches))) for r in batch]
    outputs: list[Any] = [reused.get(i) for i in range(len(items))]
    failed: list[MapItemResult] = []
    for item in results:
        outputs[item.index] = item.output
        if item.status == "failed":
            failed.append(item)
    costs = [r.cost for r in results]
    outcome = StepOutcome(
        output=outputs, attempts=1, rolls_up=True,
        cost=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        tokens_in=sum(r.tokens_in for r in results),
        tokens_out=sum(r.tokens_out for r in results),
        map_items={
            "total": len(items), "completed": len(results) - len(failed) + len(reused),
            "failed": len(failed), "reused": len(reused), "batches": len(batches),
            "batchSize": size, "concurrency": step.concurrency, "batchesInFlight": in_flight,
            "failedIndexes": [f.index for f in failed],
            "spendByModel": {key: spend.model_dump(mode="json") for key, spend
                             in spend_by_model(r.spend.items() for r in results).items()},
            "errors": [{"index": f.index, "stepId": f.failed_step_id,
                        **(f.error.model_dump(mode="json") if f.error else {})}
                       for f in failed[:MAX_LISTED_ERRORS]],
        })
    if failed:
        first = failed[0]
        message = first.error.message if first.error else "failed"
        raise OutcomeFailed(StepError(
            type="map_item_failed",
            message=f"{len(failed)} of {len(items)} items failed; first: item {first.index} "
                    f"at step {first.failed_step_id}: {message}"), outcome)
    return outcome
