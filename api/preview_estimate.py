"""A preview's token and cost estimate, made before any model is called: every llm step's
prompt rendered with the preview's input where it can be (what earlier steps will output is
not known yet, so it counts as empty), one token per three characters, plus the whole
``maxTokens`` (4,096 without one), at each model's list price. Map items multiply their steps
when the items come from the input; parallel models all count."""

from __future__ import annotations

from typing import Any

from activities.budget import (
    ASSUMED_MAX_OUTPUT_TOKENS,
    estimated_prompt_tokens,
    worst_case_cost,
)
from definition.context import MappingError, new_context, resolve_path
from definition.templates import TemplateError, render
from schema.activities import LlmRequest
from schema.definition import LlmStep, MapStep, Step, WorkflowDefinition, nested_steps
from schema.model_ref import resolve_model
from schema.preview import PreCallEstimate, StepEstimate

BASIS = ("before any call: prompts rendered with the preview's input (outputs of earlier steps "
         "count as empty), 1 token per 3 characters, plus each call's whole maxTokens "
         f"({ASSUMED_MAX_OUTPUT_TOKENS} without one), at list prices; a map's steps count once "
         "per item when its items come from the input")


def _text(source: str | None, step: LlmStep, context: dict[str, Any]) -> str:
    if not source:
        return ""
    mapped: dict[str, Any] = {}
    for name, path in step.input_mapping.items():
        try:
            mapped[name] = resolve_path(context, path)
        except MappingError:
            mapped[name] = ""
    try:
        return render(source, mapped, context)
    except TemplateError:
        return source  # what it would render is unknown: its own length stands in


def _llm(step: LlmStep, context: dict[str, Any], times: int) -> StepEstimate:
    system, user = _text(step.prompt_system, step, context), _text(step.prompt_user, step,
                                                                   context)
    tokens_in = tokens_out = 0
    cost: float | None = 0.0
    for target in step.targets():
        provider, model = resolve_model(target.model, target.provider)
        request = LlmRequest(run_id="", step_id=step.id, provider=provider, model=model,
                             system=system or None, user=user,
                             output_schema=step.output_schema, max_tokens=target.max_tokens)
        tokens_in += estimated_prompt_tokens(request) * times
        tokens_out += (target.max_tokens or ASSUMED_MAX_OUTPUT_TOKENS) * times
        one = worst_case_cost(provider, model, request)
        cost = None if one is None or cost is None else cost + one * times
    return StepEstimate(step_id=step.id, calls=times * len(step.targets()),
                        input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=cost)


def _walk(steps: list[Step], context: dict[str, Any], times: int,
          out: list[StepEstimate]) -> None:
    for step in steps:
        if isinstance(step, LlmStep):
            out.append(_llm(step, context, times))
        elif isinstance(step, MapStep):
            try:
                items = resolve_path(context, step.items)
            except MappingError:
                items = None
            _walk(step.steps, context, times * (len(items) if isinstance(items, list) else 1),
                  out)
        else:
            _walk(list(nested_steps(step)), context, times, out)


def estimate(definition: WorkflowDefinition, run_input: dict[str, Any]) -> PreCallEstimate:
    """What the preview's model calls could cost at most, before it makes any."""
    steps: list[StepEstimate] = []
    _walk(definition.steps, new_context(run_input), 1, steps)
    costs = [s.cost_usd for s in steps]
    return PreCallEstimate(
        basis=BASIS, steps=steps, calls=sum(s.calls for s in steps),
        input_tokens=sum(s.input_tokens for s in steps),
        output_tokens=sum(s.output_tokens for s in steps),
        cost_usd=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs))
