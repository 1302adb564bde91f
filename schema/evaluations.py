"""Evaluations: a candidate version (or an unsaved definition) run over a dataset of inputs,
checked by assertions and compared with a baseline (`POST /api/workflows/{slug}/evaluations`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from schema.base import CamelModel, RequestBody
from schema.bounds import IsoDateTime
from schema.definition import WorkflowDefinition
from schema.run import ChildDefinition, LlmCacheMode, RunLimits

EVALUATION_WORKFLOW = "PromptPilotEvaluation"
EVALUATION_TRIGGER = "evaluation"


class JsonSchemaAssertion(RequestBody):
    """The output validates against ``schema``."""

    type: Literal["jsonSchema"]
    schema_: dict[str, Any] = Field(alias="schema")


class EqualsAssertion(RequestBody):
    """The output (or the value at the JMESPath ``path`` in it) equals ``value``, or the
    case's ``expected`` when no value is given."""

    type: Literal["equals"]
    value: Any = None
    path: str | None = Field(default=None, min_length=1)


class ContainsAssertion(RequestBody):
    """The output, as text, contains ``value``."""

    type: Literal["contains"]
    value: str = Field(min_length=1)


class JmespathAssertion(RequestBody):
    """The JMESPath ``expression`` over ``{output, input, expected}`` is truthy."""

    type: Literal["jmespath"]
    expression: str = Field(min_length=1)


class LlmJudgeAssertion(RequestBody):
    """A model judges the output against ``rubric`` and answers pass or fail with a reason."""

    type: Literal["llmJudge"]
    rubric: str = Field(min_length=1, max_length=4000)
    model: str = Field(default="gpt-4o-mini", min_length=1)
    provider: str | None = None


Assertion = Annotated[JsonSchemaAssertion | EqualsAssertion | ContainsAssertion
                      | JmespathAssertion | LlmJudgeAssertion, Field(discriminator="type")]


class Candidate(RequestBody):
    """A stored version, or an unsaved definition."""

    version: int | None = Field(default=None, ge=1)
    definition: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> Candidate:
        if (self.version is None) == (self.definition is None):
            raise ValueError("give exactly one of version or definition")
        return self


class FromRuns(RequestBody):
    """Past runs of the workflow as the dataset: their inputs, and their outputs as the
    baseline (each at the version it used)."""

    limit: int = Field(default=20, ge=1, le=200)
    status: Literal["completed", "failed"] | None = "completed"
    since: IsoDateTime | None = None


class Case(RequestBody):
    """One explicit case: an input and, optionally, what the output should be."""

    input: dict[str, Any] = Field(default_factory=dict)
    expected: Any = None


class Dataset(RequestBody):
    """Past runs or explicit cases."""

    from_runs: FromRuns | None = None
    cases: list[Case] | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> Dataset:
        if (self.from_runs is None) == (self.cases is None):
            raise ValueError("give exactly one of fromRuns or cases")
        return self


class EvaluationRequest(RequestBody):
    """Body of `POST /api/workflows/{slug}/evaluations`."""

    candidate: Candidate
    baseline: Candidate | None = None
    """Default: the version each past run used (its recorded output); for explicit cases, the
    current version, run beside the candidate."""
    dataset: Dataset
    assertions: list[Assertion] = Field(min_length=1, max_length=20)
    llm_cache: LlmCacheMode = "use"
    concurrency: int = Field(default=4, ge=1, le=20)


class EvalCase(CamelModel):
    """A case as the evaluation workflow carries it (the baseline recorded, or to be run)."""

    index: int
    input: dict[str, Any]
    expected: Any = None
    source_run_id: str | None = None
    baseline_output: Any = None
    baseline_status: str | None = None
    baseline_cost: float | None = None


class EvaluationInput(CamelModel):
    """What the evaluation workflow needs: definitions resolved, cases, assertions."""

    evaluation_id: str
    environment: str
    workflow_id: str
    workflow_slug: str
    candidate: WorkflowDefinition
    candidate_version: int
    baseline: WorkflowDefinition | None = None
    baseline_version: int | None = None
    children: list[ChildDefinition] = Field(default_factory=list)
    cases: list[EvalCase]
    assertions: list[dict[str, Any]]
    llm_cache: LlmCacheMode = "use"
    concurrency: int = 4
    limits: RunLimits = Field(default_factory=RunLimits)


class AssertionResult(CamelModel):
    """One assertion on one output."""

    type: str
    passed: bool
    message: str | None = None


class CaseResult(CamelModel):
    """One case: both outputs, their diff, assertion results, cost and latency."""

    index: int
    input: dict[str, Any]
    expected: Any = None
    baseline_run_id: str | None = None
    candidate_run_id: str | None = None
    baseline_output: Any = None
    candidate_output: Any = None
    candidate_status: str | None = None
    diff: list[dict[str, Any]] = Field(default_factory=list)
    baseline_assertions: list[AssertionResult] = Field(default_factory=list)
    assertions: list[AssertionResult] = Field(default_factory=list)
    passed: bool = False
    baseline_passed: bool | None = None
    regression: bool = False
    cost: float | None = None
    baseline_cost: float | None = None
    judge_cost: float | None = 0.0
    """What the ``llmJudge`` assertions' model calls cost (both sides)."""
    latency_ms: float | None = None


class EvaluationSummary(CamelModel):
    """Pass rate of the candidate, its cost against the baseline's, and the regressions."""

    cases: int = 0
    passed: int = 0
    pass_rate: float = 0.0
    baseline_pass_rate: float | None = None
    cost_usd: float | None = 0.0
    baseline_cost_usd: float | None = None
    cost_delta_usd: float | None = None
    regressions: list[int] = Field(default_factory=list)


class EvaluationPublic(CamelModel):
    """An evaluation as `GET /api/evaluations/{id}` shows it."""

    id: str
    workflow_id: str
    status: Literal["running", "completed", "failed"]
    candidate_version: int | None = None
    created_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    summary: EvaluationSummary | None = None
    cases: list[CaseResult] = Field(default_factory=list)


class EvaluationEnvelope(CamelModel):
    """`{"success": true, "evaluation": {...}}`."""

    success: bool = True
    evaluation: EvaluationPublic


EVALUATE_CASE_ACTIVITY = "evaluate_case"
RECORD_EVALUATION_ACTIVITY = "record_evaluation"


class RunOutcome(CamelModel):
    """How one run of a case ended, as the evaluation workflow saw it."""

    run_id: str
    status: str
    output: Any = None
    cost: float | None = None
    latency_ms: float | None = None


class EvaluateCase(CamelModel):
    """The ``evaluate_case`` activity's input: a case, its runs, the assertions."""

    case: EvalCase
    candidate: RunOutcome
    baseline: RunOutcome | None = None
    assertions: list[dict[str, Any]]


class RecordEvaluation(CamelModel):
    """The ``record_evaluation`` activity's input: the evaluation's end."""

    evaluation_id: str
    status: Literal["completed", "failed"]
    cases: list[CaseResult] = Field(default_factory=list)
    summary: EvaluationSummary | None = None
    error: str | None = None
