"""The evaluation workflow's activities: a case checked by its assertions (candidate and
baseline alike), and the evaluation's end recorded in Postgres."""

from __future__ import annotations

import json
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jsonschema import Draft202012Validator
from temporalio import activity

from definition.diff import json_changes
from schema.evaluations import (
    EVALUATE_CASE_ACTIVITY,
    RECORD_EVALUATION_ACTIVITY,
    AssertionResult,
    CaseResult,
    EvalCase,
    EvaluateCase,
    RecordEvaluation,
)
from store.evaluations import Evaluations

_MISSING = object()


def _check(assertion: dict[str, Any], output: Any, case: EvalCase) -> AssertionResult:
    kind = str(assertion.get("type"))
    try:
        if kind == "jsonSchema":
            error = next(iter(Draft202012Validator(assertion["schema"]).iter_errors(output)),
                         None)
            return AssertionResult(type=kind, passed=error is None,
                                   message=None if error is None else error.message[:300])
        if kind == "equals":
            actual = jmespath.search(assertion["path"], output) if assertion.get("path") \
                else output
            wanted = assertion.get("value", _MISSING)
            wanted = case.expected if wanted is _MISSING or wanted is None else wanted
            return AssertionResult(type=kind, passed=actual == wanted,
                                   message=None if actual == wanted
                                   else f"{json.dumps(actual)[:200]} != {json.dumps(wanted)[:200]}")
        if kind == "contains":
            text = output if isinstance(output, str) else json.dumps(output)
            found = str(assertion["value"]) in text
            return AssertionResult(type=kind, passed=found,
                                   message=None if found else f"no {assertion['value']!r}")
        if kind == "jmespath":
            value = jmespath.search(assertion["expression"],
                                    {"output": output, "input": case.input,
                                     "expected": case.expected})
            ok = value not in (None, False, 0, "", [], {})
            return AssertionResult(type=kind, passed=ok,
                                   message=None if ok else f"{assertion['expression']} is falsy")
    except (JMESPathError, KeyError, TypeError, ValueError) as exc:
        return AssertionResult(type=kind, passed=False, message=f"{type(exc).__name__}: {exc}")
    return AssertionResult(type=kind, passed=False, message=f"unknown assertion {kind!r}")


def _judge(assertions: list[dict[str, Any]], status: str | None, output: Any,
           case: EvalCase) -> list[AssertionResult]:
    if status != "completed":
        return [AssertionResult(type=str(a.get("type")), passed=False,
                                message=f"the run {status or 'did not run'}")
                for a in assertions]
    return [_check(a, output, case) for a in assertions]


class EvaluationActivities:
    """Checks cases and records evaluations."""

    def __init__(self, evaluations: Evaluations) -> None:
        self.evaluations = evaluations

    @activity.defn(name=EVALUATE_CASE_ACTIVITY)
    async def evaluate_case(self, job: EvaluateCase) -> CaseResult:
        """The case's assertions on the candidate's output and on the baseline's."""
        case, candidate = job.case, job.candidate
        baseline_status: str | None
        baseline_run: str | None
        if job.baseline is not None:
            baseline_output, baseline_status = job.baseline.output, job.baseline.status
            baseline_cost, baseline_run = job.baseline.cost, job.baseline.run_id
        else:
            baseline_output, baseline_status = case.baseline_output, case.baseline_status
            baseline_cost, baseline_run = case.baseline_cost, case.source_run_id
        results = _judge(job.assertions, candidate.status, candidate.output, case)
        baseline = _judge(job.assertions, baseline_status, baseline_output, case) \
            if baseline_status is not None else []
        passed = all(r.passed for r in results)
        baseline_passed = all(r.passed for r in baseline) if baseline else None
        return CaseResult(
            index=case.index, input=case.input, expected=case.expected,
            baseline_run_id=baseline_run, candidate_run_id=candidate.run_id,
            baseline_output=baseline_output, candidate_output=candidate.output,
            candidate_status=candidate.status,
            diff=[c.model_dump(mode="json") for c in json_changes(baseline_output,
                                                                  candidate.output)],
            baseline_assertions=baseline, assertions=results, passed=passed,
            baseline_passed=baseline_passed, regression=bool(baseline_passed and not passed),
            cost=candidate.cost, baseline_cost=baseline_cost, latency_ms=candidate.latency_ms)

    @activity.defn(name=RECORD_EVALUATION_ACTIVITY)
    async def record_evaluation(self, job: RecordEvaluation) -> None:
        """Store the evaluation's cases, summary and status."""
        cases = json.dumps([c.model_dump(mode="json") for c in job.cases]) if job.cases \
            else None
        summary = job.summary.model_dump_json() if job.summary else None
        await self.evaluations.finish(job.evaluation_id, job.status, cases, summary, job.error)
