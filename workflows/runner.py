"""The step lifecycle shared by the interpreter and map batches. Deterministic.

A ``StepRunner`` walks a sequence of steps: it reuses seeded steps, skips steps whose
``when`` guard is falsy or that a condition jumped over, and runs the rest through the
handler of their kind, recording every transition (into the mirror when it is on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from schema.activities import TransformStepRequest, TransformStepResult
    from schema.control import ApprovalDecision
    from schema.definition import LlmStep, MapStep, TransformStep, WorkflowStep, nested_steps
    from schema.errors import ErrorType
    from schema.run import (
        INTERPRETER_LEAN,
        INTERPRETER_PATCHED,
        ChildDefinition,
        RunLimits,
        RunRecord,
        SeedStep,
        StepError,
        StepRecord,
        StepRecords,
        StepStatus,
    )
    from schema.step_output import output_problem

from definition.context import MappingError, record_step, resolve_mapping
from definition.templates import TemplateError
from workflows import approval, child, control, map_step, parallel
from workflows.llm_step import LlmStepFailed
from workflows.options import step_options
from workflows.outcome import OutcomeFailed, StepOutcome
from workflows.steps import run_step

# Mirror writes are local activities: cheap, retried without limit (Postgres may be down
# for a while), and idempotent upserts keyed by run id and step id.
MIRROR_TIMEOUT = timedelta(seconds=15)
MIRROR_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                           maximum_interval=timedelta(seconds=5))

MIRROR_BATCH_PATCH = "mirror-batched-step-writes"
_BUFFERED: frozenset[str] = frozenset({"completed", "reused", "skipped"})

Handler = Callable[["StepRunner", Any, dict[str, Any], dict[str, Any], StepRecord],
                   Awaitable[StepOutcome]]
HANDLERS: dict[str, Handler] = {
    "condition": control.run_condition,
    "parallel": parallel.run_parallel,
    "map": map_step.run_map,
    "approval": approval.run_approval,
    "workflow": child.run_child,
}


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
        return StepError(type=cause.type, message=str(cause))
    return StepError(type=ErrorType.INTERNAL,
                     message=f"{type(cause).__name__}: {cause}"[:1000])


def _attempts_of(exc: BaseException, max_attempts: int) -> int:
    if isinstance(exc, ApplicationError):
        detail = exc.details[0] if exc.details else None
        attempt = detail.get("attempt") if isinstance(detail, dict) else None
        return attempt if isinstance(attempt, int) else 1
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


@dataclass
class RunScope:
    """What the steps of one run (or one map batch) share."""

    run_id: str
    environment: str
    id_prefix: str
    """Prefix of the ids of child workflows started from here: unique per scope."""
    mirror: bool = True
    mirror_runs: bool = True
    approvals: bool = True
    max_cost_usd: float | None = None
    children: list[ChildDefinition] = field(default_factory=list)
    seeds: dict[str, SeedStep] = field(default_factory=dict)
    partial_seeds: dict[str, SeedStep] = field(default_factory=dict)
    interpreter: int = INTERPRETER_PATCHED
    """The revision the run was started for (``RunWorkflowInput.interpreter``)."""
    limits: RunLimits = field(default_factory=RunLimits)


class StepRunner:
    """Runs steps and keeps their records, the run's cost and pending approvals."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope
        self.steps: dict[str, StepRecord] = {}
        self.cost: float | None = 0.0
        self.current: str | None = None
        self.waiting: dict[str, str] = {}
        self.decisions: dict[str, ApprovalDecision] = {}
        # Finished steps wait here and travel with the next write (usually the next step's
        # "running"): one mirror local activity per step instead of two. Runs recorded before
        # this change replay the unbatched path.
        # Lean runs (revision 2, fixed in the run's input, so no patch marker is needed)
        # also run transforms as local activities that write their own row, and let the
        # first step write carry the run's "running" row.
        self.lean = scope.interpreter >= INTERPRETER_LEAN
        self.batched = scope.mirror and (self.lean or workflow.patched(MIRROR_BATCH_PATCH))
        self.pending: list[StepRecord] = []
        self.pending_run: RunRecord | None = None
        """The run's "running" record, waiting for the first step write to carry it."""
        self.clock: datetime | None = None
        """The latest time an activity reported; ``now()`` never goes back before it."""

    def now(self) -> datetime:
        """The workflow's time, moved on by the times local activities report (which run
        inside one workflow task, where ``workflow.now()`` stands still). Deterministic:
        those times are recorded in the history with the activities' results."""
        now = workflow.now()
        return now if self.clock is None or self.clock < now else self.clock

    async def run_sequence(self, steps: list[Any], context: dict[str, Any], *,
                           index: int | None = None, parent: str | None = None,
                           start: int = 0) -> Any:
        """Run steps in order; returns the output of the last step that ran."""
        output: Any = None
        jump: tuple[str, str] | None = None  # (target, condition step id)
        for position, step in enumerate(steps):
            at = position if index is None else index
            if position < start:
                output = await self.reuse(at, step, context, parent)
                # A reused condition keeps its decision: the rerun follows the same path.
                if step.type == "condition" and isinstance(output, dict) and output.get("next"):
                    jump = (str(output["next"]), step.id)
                continue
            if jump is not None:
                if step.id != jump[0]:
                    await self.skip(at, step, context, parent, f"jumped over by {jump[1]}")
                    continue
                jump = None
            if step.when is not None and not await self._guard(at, step, context, parent):
                continue
            outcome = await self.execute(at, step, context, parent)
            output = outcome.output
            if outcome.jump is not None:
                jump = (outcome.jump, step.id)
        return output

    async def _guard(self, at: int, step: Any, context: dict[str, Any],
                     parent: str | None) -> bool:
        try:
            passed = control.truthy(control.evaluate(step.when, context))
        except control.ExpressionError as exc:
            error = StepError(type="expression_error", message=f"when: {exc}")
            record = self._record(at, step, parent, "failed")
            record.finished_at = record.started_at
            await self.finish(record, "failed", error=error)
            raise StepFailed(error) from None
        if not passed:
            await self.skip(at, step, context, parent, f"when guard {step.when!r} was falsy")
        return passed

    def _record(self, at: int, step: Any, parent: str | None, status: StepStatus) -> StepRecord:
        return StepRecord(run_id=self.scope.run_id, environment=self.scope.environment,
                          step_id=step.id, step_index=at, name=step.name, type=step.type,
                          status=status, started_at=self.now(), parent_step_id=parent)

    async def execute(self, at: int, step: Any, context: dict[str, Any],
                      parent: str | None = None) -> StepOutcome:
        """One step: map its inputs, run its kind, record the result."""
        self.current = step.id
        record = self._record(at, step, parent, "running")
        try:
            mapped = resolve_mapping(context, step.input_mapping)
        except MappingError as exc:
            await self.finish(record, "failed", error=step_error(exc))
            raise StepFailed(step_error(exc)) from None
        record.input = mapped
        local = self.lean and isinstance(step, TransformStep)
        if local:
            # No "running" row for a transform: it writes itself, finished, in a moment.
            self.steps[record.step_id] = record
        else:
            await self.mirror_step(record)
        try:
            handler = HANDLERS.get(step.type)
            if handler is not None:
                outcome = await handler(self, step, mapped, context, record)
            elif local:
                outcome = await self._transform(step, mapped, record)
            else:
                outcome = await run_step(step, self.scope.run_id, mapped, context,
                                         self.scope.limits, self.budget())
        except (LlmStepFailed, OutcomeFailed) as failed:
            # What the failed work spent still counts: tokens, cost, attempts, repairs.
            await self.finish(record, "failed", outcome=failed.partial, error=failed.error)
            if failed.partial is not None and (isinstance(failed, LlmStepFailed)
                                               or failed.partial.rolls_up):
                self.add_cost(failed.partial.cost)
            raise StepFailed(failed.error) from None
        except StepFailed:
            raise
        except workflow.NondeterminismError:
            raise  # a redeploy heals it: the workflow task retries
        except Exception as exc:  # whatever it is, the step (and run) fail
            # A local activity's failure arrives as its ApplicationError, not an ActivityError;
            # a template fails as TemplateError; anything else is a bug (internal_error) that
            # a retry of the workflow task would only meet again.
            if isinstance(exc, ActivityError) and isinstance(exc.cause, CancelledError):
                # The run itself was cancelled (the only way an activity is): let run()
                # mark it cancelled rather than failed.
                raise asyncio.CancelledError from exc
            error = step_error(exc)
            attempts = 0
            if isinstance(exc, ActivityError | ApplicationError):
                attempts = _attempts_of(exc, step_options(step).retry_policy.maximum_attempts)
            await self.finish(record, "failed", error=error, attempts=attempts)
            raise StepFailed(error) from None
        if (problem := output_problem(outcome.output,
                                      self.scope.limits.max_step_output_bytes)) is not None:
            # Kept off the record (the mirror, the next step's input); the spend still counts,
            # and a transform's own "completed" row is overwritten.
            outcome.output, outcome.mirrored = None, False
            await self.finish(record, "failed", outcome=outcome, error=problem)
            self._add_spend(step, outcome)
            raise StepFailed(problem)
        await self.finish(record, "completed", outcome=outcome)
        record_step(context, step.id, mapped, outcome.output, "completed")
        self._add_spend(step, outcome)
        return outcome

    def _add_spend(self, step: Any, outcome: StepOutcome) -> None:
        if isinstance(step, LlmStep | MapStep | WorkflowStep) or outcome.rolls_up \
                or outcome.cost is not None:
            self.add_cost(outcome.cost)

    async def reuse(self, at: int, step: Any, context: dict[str, Any],
                    parent: str | None = None) -> Any:
        """Record a seeded step (and a parallel step's seeded inner steps) as reused."""
        seed = self.scope.seeds[step.id]
        now = self.now()
        status: StepStatus = "skipped" if seed.status == "skipped" else "reused"
        record = StepRecord(run_id=self.scope.run_id, environment=self.scope.environment,
                            step_id=step.id, step_index=at, name=step.name, type=step.type,
                            status=status, input=seed.input, output=seed.output, cost=0.0,
                            reused_from_record_id=seed.source_record_id,
                            parent_step_id=parent, started_at=now, finished_at=now)
        await self.mirror_step(record)
        record_step(context, step.id, seed.input, seed.output, seed.status)
        for inner in nested_steps(step):
            if inner.id in self.scope.seeds:
                await self.reuse(at, inner, context, step.id)
        return seed.output

    async def skip(self, at: int, step: Any, context: dict[str, Any], parent: str | None,
                   reason: str) -> None:
        """Record a step that does not run; later steps read its output as null."""
        record = self._record(at, step, parent, "skipped")
        record.finished_at = record.started_at
        record.rendered = {"skipReason": reason}
        record.cost = 0.0
        await self.mirror_step(record)
        record_step(context, step.id, None, None, "skipped")
        for inner in nested_steps(step):
            await self.skip(at, inner, context, step.id, f"inside skipped step {step.id}")

    async def finish(self, record: StepRecord, status: StepStatus, *,
                     outcome: StepOutcome | None = None, error: StepError | None = None,
                     attempts: int | None = None) -> None:
        """Close a step record and mirror it."""
        record.status = status
        record.finished_at = self.now()
        record.error = error
        written = False
        if outcome is not None and outcome.finished_at is not None:
            record.started_at = outcome.started_at or record.started_at
            record.finished_at = outcome.finished_at
            if self.clock is None or self.clock < outcome.finished_at:
                self.clock = outcome.finished_at
            written = outcome.mirrored
        if outcome is not None:
            record.output = outcome.output
            record.attempts = outcome.attempts
            record.tokens_in = outcome.tokens_in
            record.tokens_out = outcome.tokens_out
            record.cached_tokens = outcome.cached_tokens
            record.cost = outcome.cost
            record.model = outcome.model
            record.provider = outcome.provider
            record.rendered = outcome.rendered if outcome.rendered is not None \
                else record.rendered
            record.tool_trace = outcome.tool_trace
            record.warnings = outcome.warnings
            record.attempt_log = outcome.attempt_log
            record.repairs = outcome.repairs
            record.model_outputs = outcome.model_outputs
            record.aggregate_tokens = outcome.aggregate_tokens
            record.map_items = outcome.map_items
        elif attempts is not None:
            record.attempts = attempts
        await self.mirror_step(record, written=written)

    async def _transform(self, step: TransformStep, mapped: dict[str, Any],
                         record: StepRecord) -> StepOutcome:
        """A transform as a local activity that mirrors itself, with the buffered records."""
        opts = step_options(step)
        sent = list(self.pending) if self.scope.mirror else []
        with self._carrying_run() as run:
            request = TransformStepRequest(
                run_id=self.scope.run_id, step_id=step.id, input=mapped,
                expression=step.expression, pending=sent, run=run,
                record=record.model_copy() if self.scope.mirror else None)
            result: TransformStepResult = await workflow.execute_local_activity(
                "transform_step", request, result_type=TransformStepResult,
                start_to_close_timeout=opts.start_to_close, retry_policy=opts.retry_policy,
                summary=opts.summary)
        if result.mirrored and sent:
            self.pending = [r for r in self.pending if all(r is not s for s in sent)]
        if not result.mirrored:
            self._keep_run(run)  # the next mirror write carries it
        return StepOutcome(output=result.output, attempts=result.attempt,
                           started_at=result.started_at, finished_at=result.finished_at,
                           mirrored=result.mirrored)

    def budget(self) -> float | None:
        """What the run may still spend, or None without a budget."""
        if self.scope.max_cost_usd is None:
            return None
        return self.scope.max_cost_usd - self.spent()

    def spent(self) -> float:
        """Known spend so far (budgets count what is known; unpriced calls only warn)."""
        return sum(r.cost or 0.0 for r in self.steps.values())

    def add_cost(self, cost: float | None) -> None:
        """Add to the run's total; an unknown price makes it unknown, never a silent zero."""
        self.cost = None if cost is None or self.cost is None else self.cost + cost

    def tokens(self) -> tuple[int, int]:
        """Tokens in and out over every recorded step."""
        records = self.steps.values()
        return sum(r.tokens_in for r in records), sum(r.tokens_out for r in records)

    async def mirror_step(self, record: StepRecord, *, written: bool = False) -> None:
        """Keep the record, and upsert it into the mirror when the mirror is on (unless the
        step's own activity has ``written`` it already)."""
        self.steps[record.step_id] = record
        if not self.scope.mirror or written:
            return
        if self.batched and record.status in _BUFFERED:
            self.pending.append(record)
            return
        await self.flush(record)

    async def flush(self, record: StepRecord | None = None) -> None:
        """Write buffered step records (and `record`) in one local activity."""
        records, self.pending = [*self.pending, *([record] if record else [])], []
        if not records and self.pending_run is None:
            return
        if len(records) == 1 and self.pending_run is None:
            await workflow.execute_local_activity(
                "mirror_step", records[0], start_to_close_timeout=MIRROR_TIMEOUT,
                retry_policy=MIRROR_RETRY,
                summary=f"mirror {records[0].step_id} {records[0].status}")
            return
        with self._carrying_run() as run:
            await workflow.execute_local_activity(
                "mirror_steps", StepRecords(records=records, run=run),
                start_to_close_timeout=MIRROR_TIMEOUT, retry_policy=MIRROR_RETRY,
                summary="mirror " + ", ".join([*(["run running"] if run else []),
                                               *(f"{r.step_id} {r.status}" for r in records)]))

    @contextmanager
    def _carrying_run(self) -> Iterator[RunRecord | None]:
        """Hand the run's pending "running" row to one write. If that write fails or is
        cancelled, the next write must still carry it: the run's row lands before any of
        its steps (a child's or a triggered run's row may not exist yet)."""
        run, self.pending_run = self.pending_run, None
        try:
            yield run
        except BaseException:
            self._keep_run(run)
            raise

    def _keep_run(self, run: RunRecord | None) -> None:
        if run is not None and self.pending_run is None:
            self.pending_run = run
