"""`parallel` steps: branches of steps running concurrently in the same run. Deterministic.

Inner steps are recorded like top-level steps (their ids are unique in the definition) with
the parallel step as ``parentStepId``. With ``failFast`` the first failing branch cancels its
siblings (their running steps are recorded ``cancelled``); without it every branch finishes
and all failures are listed in the error's ``details.failures``. The output is the branches'
last outputs: a list, or an object keyed by branch name when ``branches`` is an object.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from schema.definition import ParallelStep, Step, nested_steps
    from schema.errors import ErrorType
    from schema.run import StepError, StepRecord

from workflows.outcome import OutcomeFailed, StepOutcome
from workflows.scope import StepFailed

if TYPE_CHECKING:
    from workflows.scope import Runner


async def run_parallel(runner: Runner, step: ParallelStep, mapped: dict[str, Any],
                       context: dict[str, Any], record: StepRecord) -> StepOutcome:
    """Run every branch; fail (after all finished, or at once with failFast) if one failed."""

    async def branch(steps: list[Step]) -> Any:
        try:
            return await runner.run_sequence(steps, context, index=record.step_index,
                                             parent=step.id)
        except ActivityError as exc:
            # A cancelled activity (a mirror write too) means this branch was cancelled.
            if isinstance(exc.cause, CancelledError):
                raise asyncio.CancelledError from exc
            raise

    branches = step.named_branches()
    tasks = [asyncio.create_task(branch(steps)) for _, steps in branches]
    mode = asyncio.FIRST_EXCEPTION if step.fail_fast else asyncio.ALL_COMPLETED
    try:
        _, pending = await workflow.wait(tasks, return_when=mode)
    except asyncio.CancelledError:
        for task in tasks:  # the run was cancelled: so is every branch
            task.cancel()
        raise
    for task in pending:
        task.cancel()
    if pending:
        await workflow.wait(pending)
    outputs: list[Any] = []
    failures: list[dict[str, Any]] = []
    cancelled: list[str] = []
    for (name, steps), task in zip(branches, tasks, strict=True):
        if task.cancelled():
            cancelled.append(name)
            outputs.append(None)
            await _cancel_records(runner, steps)
            continue
        exc = task.exception()
        if exc is None:
            outputs.append(task.result())
        elif isinstance(exc, StepFailed):
            outputs.append(None)
            failures.append({"branch": name, **exc.error.model_dump(mode="json")})
        else:
            raise exc
    output: Any = outputs
    if isinstance(step.branches, dict):
        output = {name: value for (name, _), value in zip(branches, outputs, strict=True)}
    if not failures:
        return StepOutcome(output=output, cost=None)
    first = failures[0]
    listed = "; ".join(f"branch {f['branch']}: {f['message']}" for f in failures)
    error = StepError(type=str(first.get("type") or ErrorType.INTERNAL),
                      message=f"{len(failures)} of {len(branches)} branches failed: {listed}",
                      details={"failures": failures, "cancelledBranches": cancelled})
    raise OutcomeFailed(error, StepOutcome(output=output, cost=None))


async def _cancel_records(runner: Runner, steps: list[Step]) -> None:
    ids = {s.id for s in steps} | {inner.id for s in steps for inner in nested_steps(s)}
    for step_id in sorted(ids):
        record = runner.steps.get(step_id)
        if record is not None and record.status in ("running", "waiting"):
            await runner.finish(record, "cancelled", error=StepError(
                type=ErrorType.CANCELLED, message="cancelled: a sibling branch failed (failFast)"))
