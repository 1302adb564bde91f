"""`workflow` steps: another stored workflow as a child run of the interpreter. Deterministic.

The child's definition was resolved when the parent run started and travels in the parent's
input (``children``), so replays never read the database. The mapped inputs are checked
against the child's variables here (defaults filled, types checked); the child run is
mirrored as its own run (trigger ``workflow``, ``parentRunId``/``parentStepId``) and its
cost and tokens roll up into the step and the parent run.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from schema.definition import Variable, WorkflowStep
    from schema.errors import ErrorType
    from schema.run import (
        ChildDefinition,
        RunResult,
        RunWorkflowInput,
        StepError,
        StepRecord,
    )
    from schema.run_labels import run_details, run_summary
    from schema.search_attributes import SA_ENVIRONMENT, SA_SLUG, SA_TRIGGER, SA_VERSION

from schema.workflow_names import WORKFLOW_NAME
from workflows.outcome import OutcomeFailed, StepOutcome

if TYPE_CHECKING:
    from workflows.scope import Runner

CHILD_TRIGGER = "workflow"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
    "object": (dict,), "array": (list,),
}


def find_child(children: list[ChildDefinition], slug: str,
               version: int | None) -> ChildDefinition | None:
    """The resolved definition a step asks for (its pinned version, or the latest)."""
    return next((c for c in children if c.slug == slug and c.requested_version == version),
                None)


def child_input(variables: list[Variable], data: dict[str, Any]) -> tuple[dict[str, Any],
                                                                         list[str]]:
    """The child's input with defaults filled, and every problem with it."""
    if not variables:
        return dict(data), []
    declared = {v.name: v for v in variables}
    problems = [f"unknown input '{n}'" for n in data if n not in declared]
    result: dict[str, Any] = {}
    for name, variable in declared.items():
        value = data.get(name)
        if value is None:
            value = variable.default
        if value is None and variable.required:
            problems.append(f"required input '{name}' is missing")
        ok = isinstance(value, _TYPES[variable.type]) and not (
            variable.type in ("number", "integer") and isinstance(value, bool))
        if value is not None and not ok:
            problems.append(f"input '{name}' must be of type {variable.type}")
        result[name] = value
    return result, problems


async def run_child(runner: Runner, step: WorkflowStep, mapped: dict[str, Any],
                    context: dict[str, Any], record: StepRecord) -> StepOutcome:
    """Start the child run, wait for it, and return its output and spend."""
    scope = runner.scope
    child = find_child(scope.children, step.workflow_slug, step.version)
    if child is None:
        raise OutcomeFailed(StepError(type="workflow_not_found", message=(
            f"workflow '{step.workflow_slug}' was not resolved when the run started")))
    data, problems = child_input(child.definition.variables, mapped)
    if problems:
        raise OutcomeFailed(StepError(type="input_invalid", message=(
            f"input of '{child.slug}' v{child.version}: {'; '.join(problems)}")))
    run_id = str(workflow.uuid4())
    rendered = {"childRunId": run_id, "workflowSlug": child.slug,
                "workflowVersion": child.version}
    record.rendered = rendered
    await runner.mirror_step(record)
    # The child run is granted what is left (siblings in flight wait for it to settle) and
    # returns what it did not spend.
    ledger = scope.ledger
    held = None if ledger is None else await ledger.grant(1)
    run_input = RunWorkflowInput(
        run_id=run_id, environment=scope.environment, workflow_id=child.workflow_id,
        workflow_slug=child.slug, workflow_version=child.version, definition=child.definition,
        input=data, trigger=CHILD_TRIGGER, mirror=scope.mirror_runs,
        max_cost_usd=None if held is None else held.amount, children=scope.children,
        limits=scope.limits, llm_cache="use" if scope.llm_cache == "use" else "off",
        side_effects=scope.side_effects,
        parent_run_id=scope.run_id, parent_step_id=step.id)
    spent: float | None = None
    try:
        result: RunResult = await workflow.execute_child_workflow(
            WORKFLOW_NAME, run_input, id=run_id, result_type=RunResult,
            search_attributes=TypedSearchAttributes([
                SearchAttributePair(SA_SLUG, child.slug),
                SearchAttributePair(SA_ENVIRONMENT, scope.environment),
                SearchAttributePair(SA_TRIGGER, CHILD_TRIGGER),
                SearchAttributePair(SA_VERSION, child.version)]),
            static_summary=run_summary(run_input), static_details=run_details(run_input))
        spent = result.actual_cost
    except ChildWorkflowError as exc:
        if isinstance(exc.cause, CancelledError):
            raise asyncio.CancelledError from exc
        failed = _failed(exc, rendered)
        cause = exc.cause
        reported = isinstance(cause, ApplicationError) and bool(cause.details)
        spent = failed.partial.cost if reported and failed.partial is not None else None
        raise failed from None
    finally:
        if held is not None and ledger is not None:
            # A child run spends within its slice; an unknown spend counts as all of it.
            ledger.settle(held, held.amount if spent is None else spent)
    return StepOutcome(output=result.output, cost=result.actual_cost, rolls_up=True,
                       tokens_in=result.tokens_in, tokens_out=result.tokens_out,
                       rendered=rendered)


def _failed(exc: ChildWorkflowError, rendered: dict[str, Any]) -> OutcomeFailed:
    cause = exc.cause
    error = StepError(type=ErrorType.INTERNAL, message=f"child run failed: {cause or exc}")
    partial = StepOutcome(output=None, cost=0.0, rolls_up=True, rendered=rendered)
    if isinstance(cause, ApplicationError):
        error = StepError(type=cause.type or ErrorType.INTERNAL,
                          message=f"child run {rendered['childRunId']}: {cause.message}")
        if cause.details and isinstance(cause.details[0], dict):
            # A child run attaches its partial result: what it spent still counts here.
            spent = RunResult.model_validate(cause.details[0])
            partial.cost, partial.tokens_in = spent.actual_cost, spent.tokens_in
            partial.tokens_out = spent.tokens_out
    return OutcomeFailed(error, partial)
