"""The one generic interpreter: walks a definition snapshot, one handler per step kind.

The step lifecycle (guards, jumps, reuse, records) lives in ``workflows/runner.py``; the
kinds in ``steps.py`` (llm, tool, transform), ``control.py`` (condition), ``parallel.py``,
``map_step.py``, ``approval.py`` and ``child.py`` (workflow). After every step transition
the runner upserts the step into the Postgres mirror through an idempotent local activity.
A failed step stops the run: the step and the run are marked ``failed`` with the error
stored, and the workflow itself fails so the Temporal UI agrees.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

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
    )

from workflows.context import new_context
from workflows.names import WORKFLOW_NAME
from workflows.runner import (
    MIRROR_RETRY,
    MIRROR_TIMEOUT,
    RunScope,
    StepFailed,
    StepRunner,
    step_error,
)

__all__ = ["WORKFLOW_NAME", "InterpreterWorkflow", "StepFailed", "step_error"]


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
    async def run(self, run: RunWorkflowInput) -> RunResult:
        """Walk the steps in order; reuse seeded steps before `fromStepId`."""
        self._run_id = run.run_id
        runner = self._runner = StepRunner(RunScope(
            run_id=run.run_id, environment=run.environment, id_prefix=run.run_id,
            mirror=run.mirror, mirror_runs=run.mirror, max_cost_usd=run.max_cost_usd,
            children=run.children, seeds={s.step_id: s for s in run.seed_steps},
            partial_seeds={s.step_id: s for s in run.partial_seeds},
            interpreter=run.interpreter))
        self._status = "running"
        started = workflow.now()
        await self._mirror_run(run, "running", started_at=started)
        context = new_context(run.input)
        start = run.definition.step_index(run.from_step_id) if run.from_step_id else 0
        try:
            output = await runner.run_sequence(run.definition.steps, context, start=start)
        except StepFailed as failed:
            self._status = "failed"
            await self._mirror_run(run, "failed", started_at=started, output=None,
                                   error=failed.error)
            # Without a mirror (previews) the caller has no other way to see the steps that
            # ran, and a parent run needs the child's spend: the failure carries them.
            partial = [] if run.mirror and not run.parent_run_id else [
                self._result(run, "failed", None)]
            raise ApplicationError(
                f"step failed: {failed.error.message}", *partial, type=failed.error.type,
                non_retryable=True,
            ) from None
        except asyncio.CancelledError:
            self._status = "cancelled"
            for record in list(runner.steps.values()):
                if record.status in ("running", "waiting"):
                    await runner.mirror_step(record.model_copy(update={
                        "status": "cancelled", "finished_at": runner.now(),
                        "error": StepError(type=ErrorType.CANCELLED, message="run cancelled")}))
            await self._mirror_run(run, "cancelled", started_at=started)
            raise
        self._status = "completed"
        runner.current = None
        await self._mirror_run(run, "completed", started_at=started, output=output)
        return self._result(run, "completed", output)

    def _result(self, run: RunWorkflowInput, status: RunStatus, output: Any) -> RunResult:
        assert self._runner is not None
        tokens_in, tokens_out = self._runner.tokens()
        return RunResult(run_id=run.run_id, status=status, output=output,
                         actual_cost=self._runner.cost, tokens_in=tokens_in,
                         tokens_out=tokens_out, steps=list(self._runner.steps.values()))

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
            started_at=started_at, finished_at=finished)
        if status == "running" and runner.lean:
            # Written by the first step write (a transform's own, or the mirror's next).
            runner.pending_run = record
            return
        if not runner.pending:
            runner.pending_run = None  # the final state supersedes a "running" never written
        await runner.flush()  # steps (after the run's row, if not written yet) land first
        await workflow.execute_local_activity(
            "mirror_run", record, start_to_close_timeout=MIRROR_TIMEOUT,
            retry_policy=MIRROR_RETRY, summary=f"mirror run {status}")
