"""The evaluation workflow: every case's candidate run (and, for explicit cases, its baseline
run) as an ordinary mirrored child run with trigger ``evaluation``, at most ``concurrency`` at
once; each case checked by the ``evaluate_case`` activity; the summary recorded at the end.
Deterministic."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from schema.definition import WorkflowDefinition
    from schema.evaluations import (
        EVALUATE_CASE_ACTIVITY,
        EVALUATION_TRIGGER,
        EVALUATION_WORKFLOW,
        RECORD_EVALUATION_ACTIVITY,
        CaseResult,
        EvalCase,
        EvaluateCase,
        EvaluationInput,
        EvaluationSummary,
        RecordEvaluation,
        RunOutcome,
    )
    from schema.run import RunResult, RunWorkflowInput

from schema.workflow_names import WORKFLOW_NAME

_TIMEOUT = timedelta(minutes=2)
_RETRY = RetryPolicy(maximum_attempts=5)


@workflow.defn(name=EVALUATION_WORKFLOW)
class EvaluationWorkflow:
    """Runs a candidate over a dataset and records how it did against the baseline."""

    @workflow.run
    async def run(self, job: EvaluationInput) -> EvaluationSummary:
        """Every case, then the summary; a failure of the evaluation itself is recorded."""
        gate = asyncio.Semaphore(job.concurrency)

        async def one(case: EvalCase) -> CaseResult:
            async with gate:
                candidate = await _run(job, job.candidate, job.candidate_version, case)
                baseline = None
                if job.baseline is not None and job.baseline_version is not None:
                    baseline = await _run(job, job.baseline, job.baseline_version, case)
            result: CaseResult = await workflow.execute_activity(
                EVALUATE_CASE_ACTIVITY, EvaluateCase(
                    case=case, candidate=candidate, baseline=baseline,
                    assertions=job.assertions), result_type=CaseResult,
                start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY)
            return result

        try:
            cases = list(await asyncio.gather(*(one(c) for c in job.cases)))
        except Exception as exc:  # recorded, then the workflow fails as it should
            await workflow.execute_activity(RECORD_EVALUATION_ACTIVITY, RecordEvaluation(
                evaluation_id=job.evaluation_id, status="failed", error=str(exc)[:2000]),
                start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY)
            raise
        summary = summarise(cases)
        await workflow.execute_activity(RECORD_EVALUATION_ACTIVITY, RecordEvaluation(
            evaluation_id=job.evaluation_id, status="completed", cases=cases,
            summary=summary), start_to_close_timeout=_TIMEOUT, retry_policy=_RETRY)
        return summary


async def _run(job: EvaluationInput, definition: WorkflowDefinition, version: int,
               case: EvalCase) -> RunOutcome:
    run_id = str(workflow.uuid4())
    started = workflow.now()
    run_input = RunWorkflowInput(
        run_id=run_id, environment=job.environment, workflow_id=job.workflow_id,
        workflow_slug=job.workflow_slug, workflow_version=version, definition=definition,
        input=case.input, trigger=EVALUATION_TRIGGER, trigger_id=job.evaluation_id,
        children=job.children, limits=job.limits, llm_cache=job.llm_cache,
        max_cost_usd=definition.max_cost_usd)
    try:
        result: RunResult = await workflow.execute_child_workflow(
            WORKFLOW_NAME, run_input, id=run_id, result_type=RunResult,
            static_summary=f"{job.workflow_slug} v{version} (evaluation case {case.index})")
    except ChildWorkflowError as exc:
        cause = exc.cause
        partial = None
        if isinstance(cause, ApplicationError) and cause.details \
                and isinstance(cause.details[0], dict):
            partial = RunResult.model_validate(cause.details[0])
        return RunOutcome(run_id=run_id, status="failed",
                          cost=partial.actual_cost if partial else None,
                          latency_ms=(workflow.now() - started).total_seconds() * 1000)
    return RunOutcome(run_id=run_id, status=result.status, output=result.output,
                      cost=result.actual_cost,
                      latency_ms=(workflow.now() - started).total_seconds() * 1000)


def summarise(cases: list[CaseResult]) -> EvaluationSummary:
    """Pass rates, costs and the regressions (passed on the baseline, failed now)."""
    total = len(cases)
    passed = sum(1 for c in cases if c.passed)
    judged = [c for c in cases if c.baseline_passed is not None]
    cost = _sum([c.cost for c in cases])
    baseline_cost = _sum([c.baseline_cost for c in cases])
    return EvaluationSummary(
        cases=total, passed=passed, pass_rate=round(passed / total, 4) if total else 0.0,
        baseline_pass_rate=round(sum(1 for c in judged if c.baseline_passed) / len(judged), 4)
        if judged else None,
        cost_usd=cost, baseline_cost_usd=baseline_cost,
        cost_delta_usd=None if cost is None or baseline_cost is None
        else round(cost - baseline_cost, 10),
        regressions=[c.index for c in cases if c.regression])


def _sum(values: list[float | None]) -> float | None:
    return None if any(v is None for v in values) else round(sum(v or 0.0 for v in values), 10)
