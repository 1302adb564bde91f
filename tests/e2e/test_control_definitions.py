"""Bad definitions of the control-flow kinds get a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Service, unique_slug

T = {"type": "transform"}


def wf(slug: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"id": slug, "name": "bad", "steps": list(steps)}


CASES: list[tuple[str, list[dict[str, Any]], str]] = [
    ("then backwards", [{"id": "a", **T}, {"id": "c", "type": "condition",
                                           "expression": "`true`", "then": "a"}],
     "/steps/1/then"),
    ("else unknown", [{"id": "c", "type": "condition", "expression": "`true`",
                       "else": "nowhere"}, {"id": "a", **T}], "/steps/0/else"),
    ("bad expression", [{"id": "c", "type": "condition", "expression": "a ||"}],
     "/steps/0/expression"),
    ("bad when", [{"id": "a", **T, "when": "foo("}], "/steps/0/when"),
    ("map without items", [{"id": "m", "type": "map", "steps": [{"id": "x", **T}]}],
     "/steps/0/items"),
    ("map item reads outer step", [{"id": "a", **T}, {"id": "m", "type": "map",
                                                      "items": "outputs.a", "steps": [
        {"id": "x", **T, "inputMapping": {"v": "outputs.a"}}]}],
     "/steps/1/steps/0/inputMapping/v"),
    ("approval in map", [{"id": "m", "type": "map", "items": "input.xs",
                          "steps": [{"id": "x", "type": "approval"}]}], "/steps/0/steps/0/type"),
    ("branch reads sibling", [{"id": "p", "type": "parallel", "branches": [
        [{"id": "x", **T}], [{"id": "y", **T, "inputMapping": {"v": "outputs.x"}}]]}],
     "/steps/0/branches/1/0/inputMapping/v"),
    ("duplicate nested id", [{"id": "x", **T}, {"id": "p", "type": "parallel",
                                                "branches": [[{"id": "x", **T}]]}],
     "/steps/1/branches/0/0/id"),
    ("unknown child workflow", [{"id": "w", "type": "workflow",
                                 "workflowSlug": "no-such-workflow"}], "/steps/0/workflowSlug"),
    ("unknown prompt", [{"id": "l", "type": "llm", "model": "offline/echo",
                         "promptId": "no-such-prompt"}], "/steps/0/promptId"),
    ("bad onTimeout", [{"id": "a", "type": "approval", "onTimeout": "maybe"}],
     "/steps/0/onTimeout"),
]


@pytest.mark.parametrize(("steps", "where"), [(s, w) for _, s, w in CASES],
                         ids=[c[0] for c in CASES])
async def test_bad_definition_is_refused_naming_the_field(
    service: Service, steps: list[dict[str, Any]], where: str
) -> None:
    response = await service.http.post("/api/workflows", json=wf(unique_slug("bad"), *steps))

    assert response.status_code == 422, response.text
    pointers = [p["pointer"] for p in response.json()["error"]["problems"]]
    assert where in pointers, pointers


async def test_workflow_steps_cannot_form_a_cycle(service: Service) -> None:
    first, second = unique_slug("cyc"), unique_slug("cyc")
    await service.create_workflow(wf(first, {"id": "a", **T}))
    await service.create_workflow(wf(second, {"id": "w", "type": "workflow",
                                              "workflowSlug": first}))

    response = await service.http.put(f"/api/workflows/{first}", json=wf(
        first, {"id": "w", "type": "workflow", "workflowSlug": second}))

    assert response.status_code == 422, response.text
    problem = response.json()["error"]["problems"][0]
    assert problem["pointer"] == "/steps/0/workflowSlug"
    assert f"{first} -> {second} -> {first}" in problem["message"]
    itself = await service.http.put(f"/api/workflows/{first}", json=wf(
        first, {"id": "w", "type": "workflow", "workflowSlug": first}))
    assert itself.status_code == 422
