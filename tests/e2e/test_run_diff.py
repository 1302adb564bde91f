"""Two runs compared step by step: a rerun with an edited prompt differs from its source on
exactly that step's prompt and the outputs from it on."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import FakeLlmServer, ok


def two_calls_and_a_transform(slug: str) -> dict[str, Any]:
    """s1 names a thing, s2 describes it, s3 maps the description: a rerun from s2 with an
    edited prompt changes s2 and s3 only."""
    return {
        "id": slug, "name": "two calls and a transform",
        "variables": [{"name": "topic", "type": "string", "required": True}],
        "steps": [
            {"id": "s1", "type": "llm", "model": "gpt-4o-mini", "promptUser": "Name {{topic}}",
             "inputMapping": {"topic": "input.topic"}},
            {"id": "s2", "type": "llm", "model": "gpt-4o-mini",
             "promptUser": "Describe {{name}}", "inputMapping": {"name": "outputs.s1"}},
            {"id": "s3", "type": "transform", "inputMapping": {"described": "outputs.s2"}}]}


async def test_a_rerun_with_an_edited_prompt_diffs_on_that_prompt_and_the_outputs_after(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("diff")
    await service.create_workflow(two_calls_and_a_transform(slug))
    llm.enqueue(ok("Nile", tokens_in=10, tokens_out=2), ok("long river", tokens_in=12,
                                                           tokens_out=3),
                ok("a very long river", tokens_in=14, tokens_out=5))
    source = (await service.run(slug, {"topic": "rivers"})).json()["run"]
    rerun = await service.http.post(f"/api/workflows/runs/{source['id']}/rerun", json={
        "fromStepId": "s2", "stepOverrides": {"s2": {"promptUser": "Describe {{name}} well"}}})
    assert rerun.status_code == 200, rerun.text
    rerun_id = rerun.json()["run"]["id"]

    response = await service.http.get(f"/api/workflows/runs/{rerun_id}/diff",
                                      params={"against": source["id"]})

    assert response.status_code == 200, response.text
    diff = response.json()["diff"]
    assert diff["changedSteps"] == ["s2", "s3"]
    steps = {s["stepId"]: s for s in diff["steps"]}
    assert (steps["s1"]["status"], steps["s1"]["againstStatus"]) == ("reused", "completed")
    assert steps["s1"]["promptDiff"] is None
    assert steps["s1"]["outputChanges"] == []
    assert steps["s1"]["costDelta"] < 0  # the rerun reused it: it did not pay for it again
    prompt = steps["s2"]["promptDiff"]
    assert "-user: Describe Nile" in prompt
    assert "+user: Describe Nile well" in prompt
    assert steps["s2"]["outputChanges"] == [
        {"op": "replace", "path": "", "stepId": "s2", "old": "long river",
         "new": "a very long river"}]
    assert steps["s2"]["tokensOutDelta"] == 2
    assert steps["s3"]["promptDiff"] is None
    assert steps["s3"]["outputChanges"][0]["path"] == "/described"
    assert diff["tokensOutDelta"] == sum(s["tokensOutDelta"] for s in diff["steps"])


async def test_a_diff_against_an_unknown_run_is_a_404(service: Service) -> None:
    slug = unique_slug("diff404")
    await service.create_workflow({"id": slug, "name": "t",
                                   "steps": [{"id": "a", "type": "transform"}]})
    run = (await service.run(slug, {})).json()["run"]
    missing = await service.http.get(f"/api/workflows/runs/{run['id']}/diff",
                                     params={"against": str(uuid.uuid4())})
    assert missing.status_code == 404
    assert "against" in missing.json()["error"]["message"]
    bad = await service.http.get(f"/api/workflows/runs/{run['id']}/diff",
                                 params={"against": "nope"})
    assert bad.status_code == 422
