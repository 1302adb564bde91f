"""The one generic interpreter: walks a definition snapshot, one handler per step kind.

The step lifecycle (guards, jumps, reuse, records) lives in ``workflows/runner.py``; the
handler table in ``steps.py`` (tool, transform), the kinds in ``llm_step.py``, ``control.py``
(condition), ``parallel.py``, ``map_step.py``, ``approval.py`` and ``child.py`` (workflow).
After every step transition the run's writer (``mirror.py``) upserts the step into the
Postgres mirror through an idempotent local activity.
A failed step stops the run: the step and the run are marked ``failed`` with the error
stored, and the workflow itself fails so the Temporal UI agrees.

Nothing the interpreter meets may leave a workflow task failing and retrying forever (the run
would stay Running with no end): an input it cannot decode, a result over the payload limit
and any unexpected exception fail the run at once with a named error type
(``input_invalid``, ``payload_too_large``, ``internal_error``), recorded the same way in the
mirror. Only a non-determinism error keeps the task retrying: a redeploy heals it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from schema.control import APPROVAL_UPDATE, ApprovalDecision
    from schema.errors import ErrorType
    from schema.run import (
        RunProgress,
        RunRecord,
        RunResult,
        RunStatus,
        RunWorkflowInput,
        StepError,
        StepProgress,
        StepStatus,
    )

from definition.context import new_context
from schema.workflow_names import WORKFLOW_NAME
from workflows.ledger import ledger_for
from workflows.mirror import MIRROR_RETRY, MIRROR_TIMEOUT
from workflows.run_payloads import (
    InputInvalid,
    decode_input,
    fitted,
    payload_problem,
    refused_record,
)
from workflows.runner import RunScope, StepFailed, StepRunner, step_error

__all__ = ["WORKFLOW_NAME", "InterpreterWorkflow", "StepFailed", "step_error"]

REFUSED_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


@workflow.defn(name=WORKFLOW_NAME)
class InterpreterWorkflow:
    """Runs one workflow definition durably."""

    def __init__(self) -> None:
        self._run_id = ""
        self._status: RunStatus = "pending"
        self._runner: StepRunner | None = None

    @workflow.query
    def progress(self) -> RunProgress:
        """Live progress: the run's status and each step's state so far."""
        runner = self._runner
        return RunProgress(
            run_id=self._run_id,
            status=self._status,
            current_step_id=runner.current if runner else None,
            actual_cost=runner.cost if runner else 0.0,
            steps=[
                StepProgress(step_id=r.step_id, status=r.status, attempts=r.attempts,
                             error=r.error.message if r.error else None)
                for r in (runner.steps.values() if runner else [])
            ],
        )

    @workflow.update(name=APPROVAL_UPDATE)
    async def decide(self, decision: ApprovalDecision) -> ApprovalDecision:
        """A person's decision on a waiting approval step; stamped with the workflow's time."""
        assert self._runner is not None
        stamped = decision.model_copy(update={"at": workflow.now()})
        self._runner.decisions[decision.step_id] = stamped
        return stamped

    @decide.validator
    def _check_decision(self, decision: ApprovalDecision) -> None:
        runner = self._runner
        if runner is None or decision.step_id not in runner.waiting \
                or decision.step_id in runner.decisions:
            raise ValueError(f"step '{decision.step_id}' is not waiting for approval")

    @workflow.run
    async def run(self, raw: RawValue) -> RunResult:
        """Walk the steps in order; reuse seeded steps before `fromStepId`."""
        try:
            run = decode_input(raw)
        except InputInvalid as refused:
            await self._refuse(raw, refused.error)
        self._run_id = run.run_id
        runner = self._runner = StepRunner(RunScope(
            run_id=run.run_id, environment=run.environment, id_prefix=run.run_id,
            mirror=run.mirror, mirror_runs=run.mirror, ledger=ledger_for(run.max_cost_usd),
            children=run.children, seeds={s.step_id: s for s in run.seed_steps},
            partial_seeds={s.step_id: s for s in run.partial_seeds}, limits=run.limits,
            workflow_slug=run.workflow_slug, llm_cache=run.llm_cache,
            side_effects=run.side_effects))
        self._status = "running"
        started = workflow.now()
        failure: StepError | None = None
        in_step = True
        try:
            try:
                await self._mirror_run(run, "running", started_at=started)
                context = new_context(run.input)
                start = run.definition.step_index(run.from_step_id) if run.from_step_id else 0
                output = await runner.run_sequence(run.definition.steps, context, start=start)
                result = self._result(run, "completed", output)
                # Checked before the run is recorded completed: a result Temporal refuses
                # would fail the workflow task on every retry, under a mirror saying so.
                failure = payload_problem(result, run.limits.max_payload_bytes,
                                          "the run's result")
                in_step = False
            except Exception as exc:
                if is_cancelled_exception(exc):  # e.g. a mirror write cancelled with the run
                    raise asyncio.CancelledError from exc
                raise
        except StepFailed as failed:
            failure = failed.error
        except asyncio.CancelledError:
            self._status = "cancelled"
            await self._close_steps("cancelled", StepError(type=ErrorType.CANCELLED,
                                                           message="run cancelled"))
            await self._mirror_run(run, "cancelled", started_at=started)
            raise
        except workflow.NondeterminismError:
            raise  # a redeploy heals it: the task retries (and the run shows as stalled)
        except Exception as exc:  # a bug fails its run, never the task forever
            # A named refusal outside a step (a mirror write over the payload limit) keeps
            # its name; anything else is a bug.
            failure = StepError(type=exc.type, message=exc.message[:1000]) \
                if isinstance(exc, ApplicationError) and exc.type else \
                StepError(type=ErrorType.INTERNAL, message=f"{type(exc).__name__}: {exc}"[:1000])
            in_step = False
            await self._close_steps("failed", failure)
        if failure is not None:
            await self._fail(run, started, failure, in_step=in_step)
        self._status = "completed"
        runner.current = None
        await self._mirror_run(run, "completed", started_at=started, output=output)
        return result

    async def _close_steps(self, status: StepStatus, error: StepError) -> None:
        """Steps still running or waiting end with the run."""
        runner = self._runner
        assert runner is not None
        for record in list(runner.steps.values()):
            if record.status in ("running", "waiting"):
                await runner.mirror_step(record.model_copy(update={
                    "status": status, "finished_at": runner.now(), "error": error}))

    async def _fail(self, run: RunWorkflowInput, started: Any, error: StepError, *,
                    in_step: bool) -> NoReturn:
        """Record the run failed and fail the workflow with the same error."""
        self._status = "failed"
        await self._mirror_run(run, "failed", started_at=started, output=None, error=error)
        # Without a mirror (previews) the caller has no other way to see the steps that
        # ran, and a parent run needs the child's spend: the failure carries them, as much
        # of them as fits in one payload.
        partial = [] if run.mirror and not run.parent_run_id else [fitted(
            self._result(run, "failed", None), run.limits.max_payload_bytes)]
        raise ApplicationError(
            f"step failed: {error.message}" if in_step else error.message, *partial,
            type=error.type, non_retryable=True,
        ) from None

    async def _refuse(self, raw: RawValue, error: StepError) -> NoReturn:
        """An input that cannot be decoded: a failed run row (when enough of it can be
        read to write one), and the workflow fails with the same error."""
        self._run_id = workflow.info().workflow_id
        self._status = "failed"
        record = refused_record(raw, error, workflow.now())
        if record is not None:
            # Best effort, a few attempts: what could be read of the input may name a
            # workflow the mirror does not hold, and the run must end either way.
            with contextlib.suppress(ActivityError, ApplicationError):
                await workflow.execute_local_activity(
                    "mirror_run", record, start_to_close_timeout=MIRROR_TIMEOUT,
                    retry_policy=REFUSED_RETRY, summary="mirror run failed (input)")
        raise ApplicationError(error.message, type=error.type, non_retryable=True)

    def _result(self, run: RunWorkflowInput, status: RunStatus, output: Any) -> RunResult:
        assert self._runner is not None
        tokens_in, tokens_out = self._runner.tokens()
        # A mirrored run's steps are in the mirror: its result does not carry them again
        # (its parent reads only the output and the spend; previews read the steps).
        steps = [] if run.mirror else list(self._runner.steps.values())
        return RunResult(run_id=run.run_id, status=status, output=output,
                         actual_cost=self._runner.cost, tokens_in=tokens_in,
                         tokens_out=tokens_out, steps=steps)

    async def _mirror_run(self, run: RunWorkflowInput, status: RunStatus, *, started_at: Any,
                          output: Any = None, error: StepError | None = None) -> None:
        if not run.mirror:
            return
        runner = self._runner
        assert runner is not None
        finished = runner.now() if status in ("completed", "failed", "cancelled") else None
        tokens_in, tokens_out = runner.tokens()
        record = RunRecord(
            run_id=run.run_id, environment=run.environment, workflow_id=run.workflow_id,
            workflow_version=run.workflow_version, status=status, input=run.input,
            output=output, error=error, actual_cost=runner.cost, tokens_in=tokens_in,
            tokens_out=tokens_out, trigger=run.trigger, trigger_id=run.trigger_id,
            source_run_id=run.source_run_id, from_step_id=run.from_step_id,
            parent_run_id=run.parent_run_id, parent_step_id=run.parent_step_id,
            workflow_slug=run.workflow_slug,
            started_at=started_at, finished_at=finished)
        writer = runner.writer
        if status == "running":
            # Written by the first step write (a transform's own, or the mirror's next).
            writer.pending_run = record
            return
        if not writer.pending:
            writer.pending_run = None  # the final state supersedes a "running" never written
        await writer.flush()  # steps (after the run's row, if not written yet) land first
        await workflow.execute_local_activity(
            "mirror_run", record, start_to_close_timeout=MIRROR_TIMEOUT,
            retry_policy=MIRROR_RETRY, summary=f"mirror run {status}")
