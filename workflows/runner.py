"""The step lifecycle shared by the interpreter and map batches. Deterministic.

A ``StepRunner`` walks a sequence of steps: it reuses seeded steps, skips steps whose
``when`` guard is falsy or that a condition jumped over, and runs the rest through the
handler of their kind (``workflows/steps.py``), recording every transition through the
run's one writer of step rows (``workflows/mirror.py``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

with workflow.unsafe.imports_passed_through():
    from schema.control import ApprovalDecision
    from schema.definition import (
        LlmStep,
        MapStep,
        Step,
        ToolStep,
        TransformStep,
        WorkflowStep,
        nested_steps,
    )
    from schema.run import StepError, StepRecord, StepStatus, record_digest
    from schema.step_output import output_problem

from definition.context import MappingError, record_step, resolve_mapping
from workflows import control
from workflows.llm_step import LlmStepFailed
from workflows.mirror import StepMirror
from workflows.options import step_options
from workflows.outcome import OutcomeFailed, OutcomeSkipped, StepOutcome
from workflows.scope import RunScope, StepFailed
from workflows.step_errors import attempts_of, step_error
from workflows.steps import run_kind

__all__ = ["RunScope", "StepFailed", "StepRunner", "step_error"]


class StepRunner:
    """Runs steps and keeps their records, the run's cost and pending approvals."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope
        self.steps: dict[str, StepRecord] = {}
        self.cost: float | None = 0.0
        self.current: str | None = None
        self.waiting: dict[str, str] = {}
        self.decisions: dict[str, ApprovalDecision] = {}
        self.writer = StepMirror(scope.mirror)
        self.clock: datetime | None = None
        """The latest time an activity reported; ``now()`` never goes back before it."""

    def now(self) -> datetime:
        """The workflow's time, moved on by the times local activities report (which run
        inside one workflow task, where ``workflow.now()`` stands still). Deterministic:
        those times are recorded in the history with the activities' results."""
        now = workflow.now()
        return now if self.clock is None or self.clock < now else self.clock

    async def run_sequence(self, steps: list[Step], context: dict[str, Any], *,
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
            if step.when is not None and not await self._guard(at, step, step.when, context,
                                                               parent):
                continue
            outcome = await self.execute(at, step, context, parent)
            output = outcome.output
            if outcome.jump is not None:
                jump = (outcome.jump, step.id)
        return output

    async def _guard(self, at: int, step: Step, when: str, context: dict[str, Any],
                     parent: str | None) -> bool:
        try:
            passed = control.truthy(control.evaluate(when, context))
        except control.ExpressionError as exc:
            error = StepError(type="expression_error", message=f"when: {exc}")
            record = self._record(at, step, parent, "failed")
            record.finished_at = record.started_at
            await self.finish(record, "failed", error=error)
            raise StepFailed(error) from None
        if not passed:
            await self.skip(at, step, context, parent, f"when guard {when!r} was falsy")
        return passed

    def _record(self, at: int, step: Step, parent: str | None, status: StepStatus) -> StepRecord:
        return StepRecord(run_id=self.scope.run_id, environment=self.scope.environment,
                          step_id=step.id, step_index=at, name=step.name, type=step.type,
                          status=status, started_at=self.now(), parent_step_id=parent)

    async def execute(self, at: int, step: Step, context: dict[str, Any],
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
        own = await self.writer.own_write(record) if self._writes_itself(step) else None
        if isinstance(step, TransformStep) or own is not None:
            # A transform writes itself, finished, in a moment; an llm or tool step's
            # activity writes its own rows (the writer wrote what was waiting).
            self.steps[record.step_id] = record
        else:
            await self.mirror_step(record)
        try:
            outcome = await run_kind(self, self.writer, step, mapped, context, record, own)
        except (LlmStepFailed, OutcomeFailed) as failed:
            # What the failed work spent still counts: tokens, cost, attempts, repairs.
            await self.finish(record, "failed", outcome=failed.partial, error=failed.error)
            if failed.partial is not None and (isinstance(failed, LlmStepFailed)
                                               or failed.partial.rolls_up):
                self.add_cost(failed.partial.cost)
            raise StepFailed(failed.error) from None
        except OutcomeSkipped as skipped:
            record.rendered = {"skipReason": skipped.reason}
            await self.finish(record, "skipped")
            record_step(context, step.id, mapped, None, "skipped")
            return StepOutcome(output=None)
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
                attempts = attempts_of(exc, step_options(step).retry_policy.maximum_attempts)
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

    def _writes_itself(self, step: Step) -> bool:
        """A tool step, or an llm step of one model with no budget and no recorded answers
        (its finished record is then the activity's answer alone): its activity writes its
        own rows."""
        if isinstance(step, ToolStep):
            return True
        return isinstance(step, LlmStep) and step.models is None \
            and self.scope.ledger is None and self.scope.llm_cache != "use"

    def _add_spend(self, step: Step, outcome: StepOutcome) -> None:
        if isinstance(step, LlmStep | MapStep | WorkflowStep) or outcome.rolls_up \
                or outcome.cost is not None:
            self.add_cost(outcome.cost)

    async def reuse(self, at: int, step: Step, context: dict[str, Any],
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

    async def skip(self, at: int, step: Step, context: dict[str, Any], parent: str | None,
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
            outcome.merge_into(record)
        elif attempts is not None:
            record.attempts = attempts
        if outcome is not None and outcome.mirrored_as is not None:
            # The step's activity wrote its finished row: written, if it is this record.
            written = outcome.mirrored_as == record_digest(record)
        await self.mirror_step(record, written=written)

    def add_cost(self, cost: float | None) -> None:
        """Add to the run's total; an unknown price makes it unknown, never a silent zero."""
        self.cost = None if cost is None or self.cost is None else self.cost + cost

    def tokens(self) -> tuple[int, int]:
        """Tokens in and out over every recorded step."""
        records = self.steps.values()
        return sum(r.tokens_in for r in records), sum(r.tokens_out for r in records)

    async def mirror_step(self, record: StepRecord, *, written: bool = False) -> None:
        """Keep the record, and have the writer upsert it into the mirror (unless the
        step's own activity has ``written`` it already)."""
        self.steps[record.step_id] = record
        await self.writer.write(record, written=written)
