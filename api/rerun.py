"""Rerun from a step: pick the source run, check it, patch the definition, seed prior steps.

The steps before `fromStepId` are never called again: their recorded outputs travel in the
workflow input as seeds and the interpreter records them as `reused`. Errors say which field
of the request is wrong (a JSON pointer) and why:

- 404 `not_found`: the source run does not exist in the caller's environment;
- 422 `validation_error`: unknown step, overrides of unknown or reused steps, a source run
  of another workflow, or a patched definition that does not validate;
- 409 `source_incomplete`: the source run never completed a step before `fromStepId`
  (the request is well-formed, but that run cannot supply the outputs to reuse).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from api.definition_checks import save_checks
from api.errors import ApiError, not_found
from api.launcher import StartRequest
from api.state import AppState
from api.stored_definitions import definition_of
from definition.validation import DefinitionInvalid
from promptpilot.settings import Settings
from schema.api import RunRequest
from schema.definition import MapStep, WorkflowDefinition, nested_steps
from schema.problems import Problem, pointer
from schema.run import SeedStep
from store.references import walk
from store.tables import RunRow, StepRow, WorkflowRow, WorkflowVersionRow

REUSABLE = ("completed", "reused", "skipped")
RERUN_TRIGGER = "rerun"


@dataclass
class RerunAsk:
    """A rerun request, whichever route it came through."""

    from_step_id: str
    input: dict[str, Any] | None = None
    step_overrides: dict[str, dict[str, Any]] | None = None
    pin_version: bool = False
    max_cost_usd: float | None = None
    source_run_id: str | None = None


def _invalid(message: str, *where: str | int) -> ApiError:
    field = str(where[-1]) if where else None
    return ApiError(422, "validation_error", message,
                    [Problem(pointer=pointer(*where), message=message, field=field)])


async def _source_run(state: AppState, environment: str, workflow: WorkflowRow,
                      run_id: str | None) -> RunRow | None:
    if run_id is None:
        latest = await state.store.list_runs(environment, workflow_id=workflow.id, limit=1)
        return latest[0] if latest else None
    try:
        wanted = uuid.UUID(run_id)
    except ValueError:
        raise _invalid("sourceRunId is not a run id", "sourceRunId") from None
    run = await state.store.get_run(environment, wanted)
    if run is None:
        # Runs of other environments are invisible, as everywhere in the API.
        raise not_found(f"run '{run_id}'")
    if run.workflow_id != workflow.id:
        raise _invalid(f"run '{run_id}' is a run of another workflow, not '{workflow.slug}'",
                       "sourceRunId")
    return run


def apply_overrides(raw: dict[str, Any], overrides: dict[str, dict[str, Any]],
                    reused: set[str], settings: Settings) -> WorkflowDefinition:
    """Patch steps of a definition for one run and validate the result."""
    patched = copy.deepcopy(raw)
    index_of = {step["id"]: i for i, step in enumerate(patched["steps"])}
    for step_id, fields in overrides.items():
        if step_id not in index_of:
            raise _invalid(f"no step '{step_id}' in the definition", "stepOverrides", step_id)
        if step_id in reused:
            raise _invalid(f"step '{step_id}' comes before fromStepId and is reused, so an "
                           "override would have no effect", "stepOverrides", step_id)
        if "id" in fields and fields["id"] != step_id:
            raise _invalid("a step's id cannot be overridden", "stepOverrides", step_id, "id")
        patched["steps"][index_of[step_id]].update(fields)
    try:
        # The checks of a save (the multi-model flag and the URL policy included).
        return save_checks(settings, patched, "/stepOverrides")
    except DefinitionInvalid as exc:
        raise DefinitionInvalid([_relocate(p, overrides, patched) for p in exc.problems],
                                "the overridden definition is invalid") from None


def _relocate(problem: Problem, overrides: dict[str, dict[str, Any]],
              patched: dict[str, Any]) -> Problem:
    """Point a problem inside an overridden field at the request's `stepOverrides`."""
    parts = problem.pointer.split("/")
    if len(parts) >= 4 and parts[1] == "steps" and parts[2].isdigit():
        step_id = patched["steps"][int(parts[2])].get("id")
        if step_id in overrides and parts[3] in overrides[step_id]:
            where = "/".join(["", "stepOverrides", pointer(step_id)[1:], *parts[3:]])
            return problem.model_copy(update={"pointer": where, "step_id": step_id})
    return problem


def _seeds(definition: WorkflowDefinition, start: int, source: RunRow | None,
           steps: dict[str, StepRow]) -> list[SeedStep]:
    seeds: list[SeedStep] = []
    for step in definition.steps[:start]:
        row = steps.get(step.id)
        if source is None or row is None or row.status not in REUSABLE:
            status = "no run to reuse" if source is None else (
                f"status {row.status}" if row else "never ran")
            message = (f"step '{step.id}' comes before fromStepId but the source run "
                       f"{'' if source is None else str(source.id) + ' '}has no completed "
                       f"record of it ({status}); pick another sourceRunId or an earlier step")
            raise ApiError(409, "source_incomplete", message,
                           [Problem(pointer="/fromStepId", message=message, step_id=step.id,
                                    field="fromStepId")])
        seeds.append(_seed(step.id, row))
        # A reused parallel step brings its inner steps, which later steps may read.
        for inner in nested_steps(step):
            inner_row = steps.get(inner.id)
            if inner_row is not None and inner_row.status in REUSABLE:
                seeds.append(_seed(inner.id, inner_row))
    return seeds


def _seed(step_id: str, row: StepRow) -> SeedStep:
    # Point at the record that produced the output, even across reruns of reruns.
    origin = row.reused_from_record_id or row.id
    return SeedStep(step_id=step_id, source_record_id=str(origin), input=row.input_json,
                    output=row.output_json,
                    status="skipped" if row.status == "skipped" else "completed")


def _map_seeds(step: object, steps: dict[str, StepRow]) -> list[SeedStep]:
    """A map step rerun reuses the items its source completed (same value, same index)."""
    if not isinstance(step, MapStep):
        return []
    row = steps.get(step.id)
    if row is None or not isinstance(row.output_json, list):
        return []
    seed = _seed(row.step_id, row)
    seed.failed_items = list((row.map_items or {}).get("failedIndexes") or [])
    return [seed]


def _map_owner(definition: WorkflowDefinition, step_id: str) -> str | None:
    """The top-level map step whose sub-steps hold `step_id` (a rerun starts there)."""
    for step in definition.steps:
        if isinstance(step, MapStep) and any(s.id == step_id for _, s in walk(step.steps)):
            return step.id
    return None


async def plan_rerun(state: AppState, environment: str, workflow: WorkflowRow,
                     current: WorkflowVersionRow, ask: RerunAsk) -> StartRequest:
    """Everything the launcher needs to start a rerun, or a 4xx naming the problem."""
    source = await _source_run(state, environment, workflow, ask.source_run_id)
    version = current
    if ask.pin_version:
        if source is None:
            raise _invalid("pinVersion needs a source run", "pinVersion")
        pinned = await state.store.get_version(workflow.id, source.workflow_version)
        if pinned is None:
            raise not_found(f"version {source.workflow_version} of workflow '{workflow.slug}'")
        version = pinned
    definition = definition_of(version)
    ask.from_step_id = _map_owner(definition, ask.from_step_id) or ask.from_step_id
    try:
        start = definition.step_index(ask.from_step_id)
    except KeyError:
        known = ", ".join(step.id for step in definition.steps)
        raise _invalid(f"no step '{ask.from_step_id}' in version {version.version} of "
                       f"'{workflow.slug}'; steps: {known}", "fromStepId") from None
    reused = {step.id for step in definition.steps[:start]}
    if ask.step_overrides:
        definition = apply_overrides(version.definition, ask.step_overrides, reused,
                                     state.settings)
    steps = {row.step_id: row for row in await state.store.get_steps(source.id)} \
        if source else {}
    seeds = _seeds(definition, start, source, steps)
    run_input = ask.input
    if run_input is None:
        run_input = dict(source.input_json or {}) if source else {}
    return StartRequest(
        environment=environment, workflow=workflow, version=version, input=run_input,
        trigger=RERUN_TRIGGER, from_step_id=ask.from_step_id,
        source_run_id=str(source.id) if source else None, seed_steps=seeds,
        max_cost_usd=ask.max_cost_usd, definition=definition,
        overrides=ask.step_overrides or None,
        partial_seeds=_map_seeds(definition.steps[start], steps),
    )


async def plan_from_run_request(state: AppState, environment: str, workflow: WorkflowRow,
                                current: WorkflowVersionRow, body: RunRequest) -> StartRequest:
    """`POST /{slug}/run` with `fromStepId`: a rerun from the latest run by default."""
    if body.from_step_id is None:
        raise _invalid("fromStepId is required with sourceRunId", "fromStepId")
    # An omitted input means "the source run's input"; an explicit {} is taken as given.
    given = "input" in body.model_fields_set
    return await plan_rerun(state, environment, workflow, current, RerunAsk(
        from_step_id=body.from_step_id, input=body.input if given else None,
        step_overrides=body.step_overrides, pin_version=body.pin_version,
        max_cost_usd=body.max_cost_usd, source_run_id=body.source_run_id))
