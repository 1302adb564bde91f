"""Save-time rules of llm steps: one model form, the multiModel flag, repairAttempts. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from definition.validation import DefinitionInvalid, parse_definition
from schema.definition import DEFAULT_REPAIR_ATTEMPTS, LlmStep

KNOWN = {"openai", "anthropic", "offline"}
TOOLS = {"http_request", "web_search"}


def definition(**step: Any) -> dict[str, Any]:
    body = {"id": "s1", "type": "llm", "promptUser": "Hello {{input.name}}", **step}
    return {"id": "wf", "name": "wf", "steps": [body]}


def problems(raw: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionInvalid) as caught:
        parse_definition(raw, KNOWN, tools=TOOLS, **kw)
    return [(p.pointer, p.message) for p in caught.value.problems]


TWO_MODELS = [{"provider": "openai", "model": "gpt-4o-mini"},
              {"model": "claude-haiku-4-5", "maxTokens": 50}]


def test_single_model_form_still_works_with_defaults() -> None:
    parsed = parse_definition(definition(model="gpt-4o-mini", maxTokens=20), KNOWN, tools=TOOLS)
    step = parsed.steps[0]
    assert isinstance(step, LlmStep)
    assert step.repair_attempts == DEFAULT_REPAIR_ATTEMPTS
    assert [(t.provider, t.model, t.max_tokens) for t in step.targets()] == [
        (None, "gpt-4o-mini", 20)]


def test_models_need_the_feature_flag() -> None:
    found = problems(definition(models=TWO_MODELS, mode="parallel"))
    assert found[0][0] == "/steps/0/models"
    assert "PROMPTPILOT_WORKFLOW__MULTI_MODEL" in found[0][1]
    parsed = parse_definition(definition(models=TWO_MODELS, mode="parallel", temperature=0.3),
                              KNOWN, tools=TOOLS, multi_model=True)
    step = parsed.steps[0]
    assert isinstance(step, LlmStep)
    assert step.mode == "parallel"
    assert [(t.model, t.max_tokens, t.temperature) for t in step.targets()] == [
        ("gpt-4o-mini", None, 0.3), ("claude-haiku-4-5", 50, 0.3)]


@pytest.mark.parametrize("step", [
    {"model": "gpt-4o-mini", "models": TWO_MODELS},
    {},
    {"models": TWO_MODELS, "provider": "openai"},
    {"models": []},
])
def test_exactly_one_model_form(step: dict[str, Any]) -> None:
    found = problems(definition(**step), multi_model=True)
    assert found[0][0].startswith("/steps/0")


def test_unknown_provider_inside_models_is_located() -> None:
    models = [*TWO_MODELS, {"provider": "nope", "model": "x"}]
    found = problems(definition(models=models), multi_model=True)
    assert found == [("/steps/0/models/2/provider",
                      "unknown provider for model 'x' (nope); known providers: anthropic, "
                      "offline, openai (use 'provider' or 'provider/model')")]


def test_repair_attempts_bounds() -> None:
    assert problems(definition(model="gpt-4o-mini", repairAttempts=9))[0][0] == \
        "/steps/0/repairAttempts"
    parsed = parse_definition(definition(model="gpt-4o-mini", repairAttempts=0), KNOWN, tools=TOOLS)
    assert isinstance(parsed.steps[0], LlmStep)
    assert parsed.steps[0].repair_attempts == 0
