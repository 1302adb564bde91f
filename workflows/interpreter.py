"""The one generic interpreter: walks a definition snapshot, one activity per step.

After every step transition it upserts the step into the Postgres mirror through an
idempotent local activity. A failed step stops the run: the step and the run are marked
``failed`` with the error stored, and the workflow itself fails so the Temporal UI agrees.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from schema.definition import LlmStep
    from schema.errors import ErrorType
    from schema.run import (
        RunProgress,
        RunRecord,
        RunResult,
        RunStatus,
        RunWorkflowInput,
        SeedStep,
        StepError,
        StepProgress,
        StepRecord,
        StepStatus,
    )

from workflows.context import MappingError, new_context, record_step, resolve_mapping
from workflows.llm_step import LlmStepFailed
from workflows.options import step_options
from workflows.steps import StepOutcome, run_step
from workflows.templates import TemplateError

WORKFLOW_NAME = "PromptPilotRun"

# Mirror writes are local activities: cheap, retried without limit (Postgres may be down
# for a while), and idempotent upserts keyed by run id and step id.
_MIRROR_TIMEOUT = timedelta(seconds=15)
_MIRROR_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                            maximum_interval=timedelta(seconds=5))


class StepFailed(Exception):
    """Raised inside the interpreter when a step ends in failure."""

    def __init__(self, error: StepError) -> None:
        super().__init__(error.message)
        self.error = error


def step_error(exc: BaseException) -> StepError:
    """Name a failure the way the mirror and the API show it."""
    cause = exc.cause if isinstance(exc, ActivityError) and exc.cause else exc
    if isinstance(cause, ApplicationError):
        return StepError(type=cause.type or ErrorType.INTERNAL, message=cause.message,
                         retryable=not cause.non_retryable)
    if isinstance(cause, TimeoutError):
        return StepError(type="step_timeout", message=f"step timed out ({cause.type})")
    if isinstance(cause, MappingError):
        return StepError(type=ErrorType.MAPPING, message=str(cause))
    if isinstance(cause, TemplateError):
        return StepError(type=ErrorType.TEMPLATE, message=str(cause))
    return StepError(type=ErrorType.INTERNAL, message=str(cause) or type(cause).__name__)


def _attempts_of(exc: BaseException, max_attempts: int) -> int:
    if isinstance(exc, ActivityError):
        # The attempt number the activity itself reported is exact; the policy is a fallback.
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.details:
            detail = cause.details[0]
            if isinstance(detail, dict) and isinstance(detail.get("attempt"), int):
                return int(detail["attempt"])
        if exc.retry_state is not None and exc.retry_state.name == "MAXIMUM_ATTEMPTS_REACHED":
            return max_attempts
        return 1
    return 0


@workflow.defn(name=WORKFLOW_NAME)
class InterpreterWorkflow:
    """Runs one workflow definition durably."""

    def __init__(self) -> None:
        self._run_id = ""
        self._status: RunStatus = "pending"
        self._current: str | None = None
        self._steps: dict[str, StepRecord] = {}
        self._cost: float | None = 0.0
        self._mirror_on = True

    @workflow.query
    def progress(self) -> RunProgress:
        """Live progress: the run's status and each step's state so far."""
        return RunProgress(
            run_id=self._run_id,
            status=self._status,
            current_step_id=self._current,
            actual_cost=self._cost,
            steps=[
                StepProgress(step_id=r.step_id, status=r.status, attempts=r.attempts,
                             error=r.error.message if r.error else None)
                for r in self._steps.values()
            ],
        )

    @workflow.run
    async def run(self, run: RunWorkflowInput) -> RunResult:
        """Walk the steps in order; reuse seeded steps before `fromStepId`."""
        self._run_id = run.run_id
        self._mirror_on = run.mirror
        self._status = "running"
        started = workflow.now()
        await self._mirror_run(run, "running", started_at=started)
        context = new_context(run.input)
        seeds = {seed.step_id: seed for seed in run.seed_steps}
        start = run.definition.step_index(run.from_step_id) if run.from_step_id else 0
        output: Any = None
        try:
            for index, step in enumerate(run.definition.steps):
                if index < start:
                    output = await self._reuse(run, index, seeds[step.id], context)
                    continue
                output = await self._execute(run, index, step, context)
        except StepFailed as failed:
            self._status = "failed"
            await self._mirror_run(run, "failed", started_at=started, output=None,
                                   error=failed.error)
            # Without a mirror (previews) the caller has no other way to see the steps that
            # ran, so the failure carries them as its details.
            partial = [] if run.mirror else [RunResult(
                run_id=run.run_id, status="failed", actual_cost=self._cost,
                tokens_in=self._tokens()[0], tokens_out=self._tokens()[1],
                steps=list(self._steps.values()))]
            raise ApplicationError(
                f"step failed: {failed.error.message}", *partial, type=failed.error.type,
                non_retryable=True,
            ) from None
        except asyncio.CancelledError:
            self._status = "cancelled"
            for record in self._steps.values():
                if record.status == "running":
                    await self._mirror_step(record.model_copy(update={
                        "status": "cancelled", "finished_at": workflow.now(),
                        "error": StepError(type=ErrorType.CANCELLED, message="run cancelled")}))
            await self._mirror_run(run, "cancelled", started_at=started)
            raise
        self._status = "completed"
        self._current = None
        await self._mirror_run(run, "completed", started_at=started, output=output)
        return RunResult(run_id=run.run_id, status="completed", output=output,
                         actual_cost=self._cost, tokens_in=self._tokens()[0],
                         tokens_out=self._tokens()[1], steps=list(self._steps.values()))

    async def _execute(self, run: RunWorkflowInput, index: int, step: Any,
                       context: dict[str, Any]) -> Any:
        self._current = step.id
        record = StepRecord(run_id=run.run_id, environment=run.environment, step_id=step.id,
                            step_index=index, name=step.name, type=step.type, status="running",
                            started_at=workflow.now())
        try:
            mapped = resolve_mapping(context, step.input_mapping)
        except MappingError as exc:
            await self._finish(record, "failed", error=step_error(exc))
            raise StepFailed(step_error(exc)) from None
        record.input = mapped
        await self._mirror_step(record)
        budget = None if run.max_cost_usd is None else run.max_cost_usd - self._spent()
        try:
            outcome = await run_step(step, run.run_id, mapped, context, budget)
        except LlmStepFailed as failed:
            # What the failed calls spent still counts: tokens, cost, attempts, repairs.
            await self._finish(record, "failed", outcome=failed.partial, error=failed.error)
            self._add_cost(failed.partial.cost)
            raise StepFailed(failed.error) from None
        except (ActivityError, TemplateError) as exc:
            if isinstance(exc, ActivityError) and isinstance(exc.cause, CancelledError):
                # The run itself was cancelled (the only way an activity is): let run()
                # mark it cancelled rather than failed.
                raise asyncio.CancelledError from exc
            error = step_error(exc)
            max_attempts = step_options(step).retry_policy.maximum_attempts
            await self._finish(record, "failed", error=error,
                               attempts=_attempts_of(exc, max_attempts))
            raise StepFailed(error) from None
        await self._finish(record, "completed", outcome=outcome)
        record_step(context, step.id, mapped, outcome.output, "completed")
        if isinstance(step, LlmStep) or outcome.cost is not None:
            self._add_cost(outcome.cost)
        return outcome.output

    async def _reuse(self, run: RunWorkflowInput, index: int, seed: SeedStep,
                     context: dict[str, Any]) -> Any:
        step = run.definition.steps[index]
        now = workflow.now()
        record = StepRecord(run_id=run.run_id, environment=run.environment, step_id=step.id,
                            step_index=index, name=step.name, type=step.type, status="reused",
                            input=seed.input, output=seed.output, cost=0.0,
                            reused_from_record_id=seed.source_record_id,
                            started_at=now, finished_at=now)
        self._steps[step.id] = record
        await self._mirror_step(record)
        record_step(context, step.id, seed.input, seed.output, "completed")
        return seed.output

    async def _finish(self, record: StepRecord, status: StepStatus, *,
                      outcome: StepOutcome | None = None, error: StepError | None = None,
                      attempts: int | None = None) -> None:
        record.status = status
        record.finished_at = workflow.now()
        record.error = error
        if outcome is not None:
            record.output = outcome.output
            record.attempts = outcome.attempts
            record.tokens_in = outcome.tokens_in
            record.tokens_out = outcome.tokens_out
            record.cached_tokens = outcome.cached_tokens
            record.cost = outcome.cost
            record.model = outcome.model
            record.provider = outcome.provider
            record.rendered = outcome.rendered
            record.tool_trace = outcome.tool_trace
            record.warnings = outcome.warnings
            record.attempt_log = outcome.attempt_log
            record.repairs = outcome.repairs
            record.model_outputs = outcome.model_outputs
            record.aggregate_tokens = outcome.aggregate_tokens
        elif attempts is not None:
            record.attempts = attempts
        self._steps[record.step_id] = record
        await self._mirror_step(record)

    def _spent(self) -> float:
        """Known spend so far (budgets count what is known; unpriced calls only warn)."""
        return sum(r.cost or 0.0 for r in self._steps.values())

    def _add_cost(self, cost: float | None) -> None:
        # An unknown price makes the run's total unknown too: never a silent zero.
        self._cost = None if cost is None or self._cost is None else self._cost + cost

    def _tokens(self) -> tuple[int, int]:
        records = self._steps.values()
        return sum(r.tokens_in for r in records), sum(r.tokens_out for r in records)

    async def _mirror_step(self, record: StepRecord) -> None:
        self._steps[record.step_id] = record
        if not self._mirror_on:
            return
        await workflow.execute_local_activity(
            "mirror_step", record, start_to_close_timeout=_MIRROR_TIMEOUT,
            retry_policy=_MIRROR_RETRY, summary=f"mirror {record.step_id} {record.status}",
        )

    async def _mirror_run(self, run: RunWorkflowInput, status: RunStatus, *, started_at: Any,
                          output: Any = None, error: StepError | None = None) -> None:
        if not run.mirror:
            return
        finished = workflow.now() if status in ("completed", "failed", "cancelled") else None
        tokens_in, tokens_out = self._tokens()
        await workflow.execute_local_activity(
            "mirror_run",
            RunRecord(run_id=run.run_id, environment=run.environment,
                      workflow_id=run.workflow_id, workflow_version=run.workflow_version,
                      status=status, input=run.input, output=output, error=error,
                      actual_cost=self._cost, tokens_in=tokens_in, tokens_out=tokens_out,
                      trigger=run.trigger, trigger_id=run.trigger_id,
                      source_run_id=run.source_run_id,
                      from_step_id=run.from_step_id, started_at=started_at,
                      finished_at=finished),
            start_to_close_timeout=_MIRROR_TIMEOUT, retry_policy=_MIRROR_RETRY,
            summary=f"mirror run {status}",
        )
