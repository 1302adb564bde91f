"""Workflow steps (child runs whose cost rolls up) and the stored prompt library."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import FakeLlmServer, ok


def summariser(slug: str, prompt: str | None = None, version: int | None = None
               ) -> dict[str, Any]:
    step: dict[str, Any] = {"id": "summary", "type": "llm", "model": "openai/gpt-4o-mini",
                            "inputMapping": {"topic": "input.topic"}}
    if prompt:
        step.update(promptId=prompt, **({"promptVersion": version} if version else {}))
    else:
        step["promptUser"] = "Summarise {{topic}}"
    return {"id": slug, "name": "summariser", "steps": [step],
            "variables": [{"name": "topic", "type": "string", "required": True}]}


async def test_workflow_step_runs_a_child_whose_cost_rolls_up(
    service: Service, llm: FakeLlmServer
) -> None:
    child = unique_slug("child")
    parent = unique_slug("parent")
    await service.create_workflow(summariser(child))
    await service.create_workflow({"id": parent, "name": "parent", "steps": [
        {"id": "prep", "type": "transform", "expression": "{topic: t}",
         "inputMapping": {"t": "input.subject"}},
        {"id": "sub", "type": "workflow", "workflowSlug": child,
         "inputMapping": {"topic": "outputs.prep.topic"}},
    ]})
    llm.enqueue(ok("a fine summary", tokens_in=100, tokens_out=20))

    run = (await service.run(parent, {"subject": "rivers"})).json()["run"]

    assert run["status"] == "completed", run.get("error")
    sub = next(s for s in run["steps"] if s["stepId"] == "sub")
    assert sub["outputJson"] == "a fine summary"
    assert (sub["tokensIn"], sub["tokensOut"]) == (100, 20)
    assert sub["cost"] > 0
    assert run["actualCost"] == pytest.approx(sub["cost"])
    child_id = sub["rendered"]["childRunId"]
    child_run = (await service.http.get(f"/api/workflows/runs/{child_id}")).json()["run"]
    assert (child_run["trigger"], child_run["parentRunId"], child_run["parentStepId"]) == (
        "workflow", run["id"], "sub")
    assert child_run["workflowSlug"] == child
    assert child_run["actualCost"] == pytest.approx(sub["cost"])
    assert child_run["inputJson"] == {"topic": "rivers"}


async def test_a_child_whose_first_transform_fails_is_recorded_with_its_step(
    service: Service,
) -> None:
    # A child run has no row until the interpreter writes one; its first step (a transform
    # that fails) must still land after it, never as an orphan step.
    child = unique_slug("child")
    parent = unique_slug("parent")
    await service.create_workflow({"id": child, "name": "failing child", "steps": [
        {"id": "bad", "type": "transform", "expression": "abs(t)",
         "inputMapping": {"t": "input.topic"}}],
        "variables": [{"name": "topic", "type": "string", "required": True}]})
    await service.create_workflow({"id": parent, "name": "parent", "steps": [
        {"id": "sub", "type": "workflow", "workflowSlug": child,
         "inputMapping": {"topic": "input.subject"}}]})

    run = (await service.run(parent, {"subject": "rivers"})).json()["run"]

    assert run["status"] == "failed"
    child_id = next(s for s in run["steps"] if s["stepId"] == "sub")["rendered"]["childRunId"]
    child_run = (await service.http.get(f"/api/workflows/runs/{child_id}")).json()["run"]
    assert child_run["status"] == "failed"
    assert [(s["stepId"], s["status"]) for s in child_run["steps"]] == [("bad", "failed")]
    assert child_run["steps"][0]["error"]["type"] == "transform_error"


async def test_stored_prompts_are_versioned_and_runs_record_the_version(
    service: Service, llm: FakeLlmServer
) -> None:
    prompt = unique_slug("prompt")
    created = await service.http.post("/api/prompts", json={
        "id": prompt, "name": "summary", "promptSystem": "Be brief.",
        "promptUser": "V1: summarise {{topic}}"})
    assert created.status_code == 201, created.text
    assert created.json()["prompt"]["currentVersion"] == 1
    updated = await service.http.put(f"/api/prompts/{prompt}",
                                     json={"promptSystem": "Be brief.",
                                           "promptUser": "V2: summarise {{topic}}"})
    assert updated.json()["prompt"]["version"]["version"] == 2
    versions = (await service.http.get(f"/api/prompts/{prompt}/versions")).json()["versions"]
    assert [v["promptUser"][:2] for v in versions] == ["V1", "V2"]
    listed = (await service.http.get("/api/prompts")).json()["prompts"]
    assert prompt in [p["id"] for p in listed]
    latest, pinned = unique_slug("wf"), unique_slug("wf")
    await service.create_workflow(summariser(latest, prompt))
    await service.create_workflow(summariser(pinned, prompt, version=1))

    first = (await service.run(latest, {"topic": "lakes"})).json()["run"]
    second = (await service.run(pinned, {"topic": "lakes"})).json()["run"]

    assert (first["status"], second["status"]) == ("completed", "completed")
    step = first["steps"][0]
    assert step["rendered"]["promptRef"] == {"id": prompt, "version": 2}
    assert step["rendered"]["user"] == "V2: summarise lakes"
    assert step["rendered"]["system"] == "Be brief."
    assert second["steps"][0]["rendered"]["promptRef"] == {"id": prompt, "version": 1}
    assert "V1: summarise lakes" in str(llm.requests[-1].body["messages"])
    # The stored definition keeps the reference; the run's snapshot had the texts.
    stored = (await service.http.get(f"/api/workflows/{latest}")).json()["workflow"]
    assert "promptUser" not in stored["definition"]["steps"][0]
    async with service.store.engine.connect() as db:
        env = (await db.execute(text("select environment from prompts where slug = :s"),
                                {"s": prompt})).scalar_one()
    assert env == "dev"
    uuid.UUID(first["id"])
