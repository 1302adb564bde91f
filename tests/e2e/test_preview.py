"""Preview (seed 003 section 4) and definition versions: detail and diff."""

from __future__ import annotations

from typing import Any

from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok, status


async def test_preview_runs_every_step_and_writes_no_rows(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("prev")
    await service.create_workflow(chain(slug, 3))
    rows = await service.store.count_rows()

    response = await service.http.post(f"/api/workflows/{slug}/preview",
                                       json={"input": {"topic": "tides"}})

    assert response.status_code == 200, response.text
    preview = response.json()["preview"]
    assert await service.store.count_rows() == rows
    assert llm.count(OPENAI_PATH) == 3
    assert preview["status"] == "completed"
    assert preview["previewId"].startswith("preview-")
    assert (preview["workflowVersion"], preview["usedSampleData"]) == (1, False)
    assert [s["stepId"] for s in preview["steps"]] == ["s1", "s2", "s3"]
    for step in preview["steps"]:
        assert step["status"] == "completed"
        assert step["durationMs"] >= 0
        assert step["startedAt"] <= step["finishedAt"]
        assert step["tokensIn"] > 0
    assert preview["steps"][1]["input"] == {"prev": preview["steps"][0]["output"]}
    assert preview["output"] == preview["steps"][2]["output"]
    assert preview["output"].startswith("echo: Step 3: continue echo: Step 2")
    tokens = preview["tokenEstimates"]
    assert tokens["inputTokens"] == sum(s["tokensIn"] for s in preview["steps"])
    assert tokens["totalTokens"] == tokens["inputTokens"] + tokens["outputTokens"]
    assert tokens["estimatedCost"] > 0
    assert preview["durationMs"] > 0


async def test_preview_with_sample_data_and_a_failed_step(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("prevs")
    await service.create_workflow(chain(slug, 3))
    rows = await service.store.count_rows()
    llm.enqueue(ok(), status(400, "prompt rejected"))

    response = await service.http.post(f"/api/workflows/{slug}/preview",
                                       json={"useSampleData": True})

    assert response.status_code == 200, response.text
    preview = response.json()["preview"]
    assert preview["usedSampleData"] is True
    assert preview["input"] == {"topic": "durable execution"}
    assert preview["status"] == "failed"
    assert preview["error"]["type"] == "provider_bad_request"
    # The steps that ran are shown (from the failure's details), the rest as skipped.
    assert [(s["stepId"], s["status"]) for s in preview["steps"]] == [
        ("s1", "completed"), ("s2", "failed"), ("s3", "skipped")]
    assert preview["steps"][0]["output"] == "echo: Start on durable execution"
    assert "prompt rejected" in preview["steps"][1]["error"]["message"]
    assert await service.store.count_rows() == rows


async def test_preview_of_an_unsaved_definition(service: Service, llm: FakeLlmServer) -> None:
    rows = await service.store.count_rows()
    definition = chain(unique_slug("draft"), 2)

    response = await service.http.post("/api/workflows/preview", json={
        "definition": definition, "input": {"topic": "kelp"}, "useSampleData": True})

    assert response.status_code == 200, response.text
    preview = response.json()["preview"]
    assert preview["status"] == "completed"
    assert preview["workflowId"] == "unsaved"
    assert preview["input"] == {"topic": "kelp"}  # explicit input wins over samples
    assert llm.count(OPENAI_PATH) == 2
    assert await service.store.count_rows() == rows
    missing = await service.http.get(f"/api/workflows/{definition['id']}")
    assert missing.status_code == 404


async def _pointers(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "validation_error"
    return [p["pointer"] for p in body["error"]["problems"]]


async def test_preview_rejects_bad_definitions_and_inputs(
    service: Service, llm: FakeLlmServer
) -> None:
    bad = chain(unique_slug("bad"), 2)
    bad["steps"][1]["promptUser"] = ""
    bad["steps"][0]["inputMapping"] = {"topic": "outputs.s2"}
    pointers = await _pointers(await service.http.post(
        "/api/workflows/preview", json={"definition": bad, "useSampleData": True}))
    assert "/definition/steps/1/promptUser" in pointers
    semantic = chain(unique_slug("bad"), 2)
    semantic["steps"][0]["inputMapping"] = {"topic": "outputs.s2"}
    pointers = await _pointers(await service.http.post(
        "/api/workflows/preview", json={"definition": semantic, "useSampleData": True}))
    assert pointers == ["/definition/steps/0/inputMapping/topic"]
    slug = unique_slug("badin")
    await service.create_workflow(chain(slug, 1))
    pointers = await _pointers(await service.http.post(f"/api/workflows/{slug}/preview",
                                                       json={"input": {"topic": 3}}))
    assert pointers == ["/input/topic"]
    assert llm.count(OPENAI_PATH) == 0


async def test_versions_detail_and_diff(service: Service) -> None:
    slug = unique_slug("diff")
    await service.create_workflow(chain(slug, 3))
    edited = chain(slug, 4)
    edited["steps"][1]["promptUser"] = "Changed {{prev}}"
    edited["steps"][2]["temperature"] = 0.2
    del edited["steps"][2]["inputMapping"]
    edited["steps"][2]["promptUser"] = "Step 3 alone"
    assert (await service.http.put(f"/api/workflows/{slug}", json=edited)).status_code == 200

    one = (await service.http.get(f"/api/workflows/{slug}/versions/1")).json()["version"]
    assert one["version"] == 1
    assert one["definition"]["steps"][1]["promptUser"] == "Step 2: continue {{prev}}"
    diff = (await service.http.get(f"/api/workflows/{slug}/versions/diff",
                                   params={"from": 1, "to": 2})).json()
    assert (diff["fromVersion"], diff["toVersion"]) == (1, 2)
    assert diff["steps"] == {"added": ["s4"], "removed": [], "changed": ["s2", "s3"],
                             "moved": []}
    changes = {(c["op"], c["path"]): c for c in diff["changes"]}
    assert changes[("replace", "/steps/1/promptUser")]["new"] == "Changed {{prev}}"
    assert changes[("replace", "/steps/1/promptUser")]["stepId"] == "s2"
    # Stored versions leave unset optional fields out (never null): a new value is added.
    assert changes[("add", "/steps/2/temperature")]["new"] == 0.2
    assert changes[("remove", "/steps/2/inputMapping/prev")]["old"] == "outputs.s2"
    assert changes[("add", "/steps/3")]["new"]["id"] == "s4"
    assert ("replace", "/name") in changes
    default = (await service.http.get(f"/api/workflows/{slug}/versions/diff",
                                      params={"from": 2})).json()
    assert default["changes"] == []
    missing = await service.http.get(f"/api/workflows/{slug}/versions/diff",
                                     params={"from": 1, "to": 9})
    assert missing.status_code == 404
    assert missing.json()["error"]["problems"][0]["pointer"] == "/to"
    assert (await service.http.get(f"/api/workflows/{slug}/versions/9")).status_code == 404
