"""Evaluations: `POST /api/workflows/{slug}/evaluations` runs a candidate over a dataset (past
runs or explicit cases), checks its outputs by assertions against a baseline, and
`GET /api/evaluations/{id}` reads the result. The work is a durable Temporal workflow whose
runs are ordinary mirrored runs with trigger `evaluation`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from temporalio.service import RPCError

from api.definition_checks import save_checks
from api.deps import CurrentKey, StateDep
from api.errors import ApiError, not_found
from api.state import AppState
from api.stored_definitions import definition_of
from api.workflow_lookup import load_workflow
from definition.validation import DefinitionInvalid
from payloads.size_guard import run_limits
from schema.definition import WorkflowDefinition
from schema.evaluations import (
    EVALUATION_TRIGGER,
    EVALUATION_WORKFLOW,
    Candidate,
    CaseResult,
    EvalCase,
    EvaluationEnvelope,
    EvaluationInput,
    EvaluationPublic,
    EvaluationRequest,
    EvaluationSummary,
)
from store.evaluations import Evaluations
from store.references import References
from store.tables import EvaluationRow, WorkflowRow

router = APIRouter(tags=["evaluations"])


async def _definition(state: AppState, row: WorkflowRow, candidate: Candidate,
                      where: str) -> tuple[WorkflowDefinition, int]:
    if candidate.definition is not None:
        try:
            return save_checks(state.settings, candidate.definition, f"{where}/definition"), 0
        except DefinitionInvalid as exc:
            for problem in exc.problems:
                problem.pointer = f"{where}/definition{problem.pointer}"
            raise
    assert candidate.version is not None
    version = await state.store.get_version(row.id, candidate.version)
    if version is None:
        raise ApiError(422, "validation_error", f"workflow '{row.slug}' has no version "
                       f"{candidate.version}", [])
    return definition_of(version), candidate.version


async def _cases(state: AppState, environment: str, row: WorkflowRow,
                 body: EvaluationRequest) -> list[EvalCase]:
    dataset = body.dataset
    if dataset.cases is not None:
        return [EvalCase(index=i, input=c.input, expected=c.expected)
                for i, c in enumerate(dataset.cases)]
    assert dataset.from_runs is not None
    picked = dataset.from_runs
    # An evaluation's own runs are not past runs to learn from.
    runs = await state.store.list_runs(environment, workflow_id=row.id, status=picked.status,
                                       not_trigger=EVALUATION_TRIGGER, since=picked.since,
                                       limit=picked.limit)
    return [EvalCase(index=i, input=dict(run.input_json or {}), source_run_id=str(run.id),
                     baseline_output=run.output_json, baseline_status=run.status,
                     baseline_cost=run.actual_cost)
            for i, run in enumerate(runs)]


@router.post("/api/workflows/{slug}/evaluations", status_code=202,
             response_model=EvaluationEnvelope)
async def start_evaluation(slug: str, body: EvaluationRequest, state: StateDep,
                           key: CurrentKey) -> EvaluationEnvelope:
    """Start an evaluation; 202 with its id, `running` until its cases are done."""
    row, current = await load_workflow(state, key.environment, slug)
    candidate, candidate_version = await _definition(state, row, body.candidate, "/candidate")
    references = References(state.store, key.environment)
    candidate, children = await references.resolve(candidate)
    baseline: WorkflowDefinition | None = None
    baseline_version: int | None = None
    if body.baseline is not None or body.dataset.cases is not None:
        wanted = body.baseline or Candidate(version=current.version)
        baseline, baseline_version = await _definition(state, row, wanted, "/baseline")
        baseline, more = await references.resolve(baseline)
        children += [c for c in more if c not in children]
    cases = await _cases(state, key.environment, row, body)
    if not cases:
        raise ApiError(422, "validation_error", "the dataset is empty: no past runs match "
                       "fromRuns", [])
    evaluation_id = uuid.uuid4()
    job = EvaluationInput(
        evaluation_id=str(evaluation_id), environment=key.environment, workflow_id=str(row.id),
        workflow_slug=row.slug, candidate=candidate, candidate_version=candidate_version,
        baseline=baseline, baseline_version=baseline_version, children=children, cases=cases,
        assertions=[a.model_dump(mode="json", by_alias=True) for a in body.assertions],
        llm_cache=body.llm_cache, concurrency=body.concurrency,
        limits=run_limits(state.settings))
    record = EvaluationRow(id=evaluation_id, environment=key.environment, workflow_id=row.id,
                           status="running", candidate_version=candidate_version or None,
                           request=body.model_dump(mode="json", by_alias=True))
    evaluations = Evaluations(state.store.engine)
    await evaluations.create(record)
    try:
        client = await state.temporal(key.environment)
        await client.start_workflow(EVALUATION_WORKFLOW, job, id=f"eval-{evaluation_id}",
                                    task_queue=state.settings.temporal.task_queue,
                                    static_summary=f"evaluation of {row.slug} "
                                    f"({len(cases)} cases)")
    except (RPCError, RuntimeError, OSError) as exc:
        await evaluations.finish(str(evaluation_id), "failed", None, None,
                                 f"the evaluation could not start: {exc}")
        raise ApiError(503, "temporal_unavailable",
                       f"could not start the evaluation: {exc}") from exc
    return EvaluationEnvelope(evaluation=evaluation_public(record))


@router.get("/api/evaluations/{evaluation_id}", response_model=EvaluationEnvelope)
async def get_evaluation(evaluation_id: uuid.UUID, state: StateDep,
                         key: CurrentKey) -> EvaluationEnvelope:
    """An evaluation: its status, then every case and the summary."""
    row = await Evaluations(state.store.engine).get(key.environment, evaluation_id)
    if row is None:
        raise not_found(f"evaluation '{evaluation_id}'")
    return EvaluationEnvelope(evaluation=evaluation_public(row))


def evaluation_public(row: EvaluationRow) -> EvaluationPublic:
    """An evaluation row as the API and the inspector show it."""
    cases: list[Any] = row.cases or []
    return EvaluationPublic(
        id=str(row.id), workflow_id=str(row.workflow_id),
        status=row.status,  # running, completed or failed (validated)
        candidate_version=row.candidate_version, created_at=row.created_at,
        finished_at=row.finished_at, error=row.error,
        summary=EvaluationSummary.model_validate(row.summary) if row.summary else None,
        cases=[CaseResult.model_validate(c) for c in cases])
