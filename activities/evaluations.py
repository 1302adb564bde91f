"""The evaluation workflow's activities: a case checked by its assertions (candidate and
baseline alike), and the evaluation's end recorded in Postgres."""

from __future__ import annotations

import json
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jsonschema import Draft202012Validator
from temporalio import activity

from activities.llm import LlmActivities
from activities.pricing import price
from activities.providers import registry
from activities.providers.validation import validated_output
from definition.diff import json_changes
from schema.activities import LlmRequest
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


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["pass", "reason"],
    "properties": {"pass": {"type": "boolean"}, "reason": {"type": "string"}}}
JUDGE_SYSTEM = ("You judge one output of an LLM workflow against a rubric. Answer only JSON: "
                '{"pass": true or false, "reason": "one sentence"}.')


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




class EvaluationActivities:
    """Checks cases (an ``llmJudge`` asks a model through the worker's providers) and records
    evaluations."""

    def __init__(self, evaluations: Evaluations, llm: LlmActivities | None = None) -> None:
        self.evaluations, self.llm = evaluations, llm

    async def _assess(self, assertions: list[dict[str, Any]], status: str | None,
                      output: Any, case: EvalCase) -> tuple[list[AssertionResult], float]:
        if status != "completed":
            return [AssertionResult(type=str(a.get("type")), passed=False,
                                    message=f"the run {status or 'did not run'}")
                    for a in assertions], 0.0
        results, spent = [], 0.0
        for assertion in assertions:
            if assertion.get("type") == "llmJudge":
                result, cost = await self._judge(assertion, output, case)
                results.append(result)
                spent += cost
            else:
                results.append(_check(assertion, output, case))
        return results, spent

    async def _judge(self, assertion: dict[str, Any], output: Any,
                     case: EvalCase) -> tuple[AssertionResult, float]:
        if self.llm is None:
            return AssertionResult(type="llmJudge", passed=False,
                                   message="no model providers in this worker"), 0.0
        provider, model = registry.resolve_model(str(assertion["model"]),
                                                 assertion.get("provider"))
        request = LlmRequest(
            run_id="evaluation", step_id="llmJudge", provider=provider, model=model,
            system=JUDGE_SYSTEM, output_schema=JUDGE_SCHEMA, max_tokens=300, temperature=0,
            user=(f"Rubric:\n{assertion['rubric']}\n\nInput:\n{json.dumps(case.input)}\n\n"
                  f"Output:\n{json.dumps(output)}"))
        completion = await self.llm.provider(provider).complete(request, model)
        verdict = validated_output(completion.text, JUDGE_SCHEMA)
        cost, _ = price(provider, model, completion.tokens_in, completion.tokens_out,
                        completion.cached_tokens, completion.cache_write_tokens)
        return AssertionResult(type="llmJudge", passed=bool(verdict["pass"]),
                               message=str(verdict["reason"])[:300]), cost or 0.0

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
        results, judged = await self._assess(job.assertions, candidate.status,
                                             candidate.output, case)
        baseline: list[AssertionResult] = []
        if baseline_status is not None:
            baseline, judged_baseline = await self._assess(job.assertions, baseline_status,
                                                           baseline_output, case)
            judged += judged_baseline
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
            cost=candidate.cost, baseline_cost=baseline_cost, judge_cost=round(judged, 10),
            latency_ms=candidate.latency_ms)

    @activity.defn(name=RECORD_EVALUATION_ACTIVITY)
    async def record_evaluation(self, job: RecordEvaluation) -> None:
        """Store the evaluation's cases, summary and status."""
        cases = json.dumps([c.model_dump(mode="json") for c in job.cases]) if job.cases \
            else None
        summary = job.summary.model_dump_json() if job.summary else None
        await self.evaluations.finish(job.evaluation_id, job.status, cases, summary, job.error)
