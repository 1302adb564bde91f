"""LLM steps end to end: retries with their attempt log, repair, budget, keys, templates, usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activities.pricing import price
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok, rate_limited, status

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"],
}


async def run_once(service: Service, definition: dict[str, Any], run_input: dict[str, Any],
                   **body: Any) -> dict[str, Any]:
    await service.create_workflow(definition)
    response = await service.run(definition["id"], run_input, **body)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["run"]
    return run


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_rate_limit_waits_retry_after_then_succeeds(
    service: Service, llm: FakeLlmServer
) -> None:
    llm.enqueue(rate_limited(retry_after=2), ok("fine", tokens_in=10, tokens_out=2))
    run = await run_once(service, chain(unique_slug("r429"), 1), {"topic": "x"})
    assert run["status"] == "completed"
    step = run["steps"][0]
    assert step["attempts"] == 2
    assert step["retryCount"] == 1
    first, second = step["attemptLog"]
    assert (first["number"], first["status"], first["errorType"]) == (
        1, "failed", "provider_rate_limited")
    assert first["retryDelaySeconds"] == 2.0
    assert "429" in first["message"]
    assert (second["number"], second["status"]) == (2, "completed")
    assert stamp(second["startedAt"]) - stamp(first["finishedAt"]) >= timedelta(seconds=2)
    assert llm.count(OPENAI_PATH) == 2


async def test_bad_request_fails_at_once_with_one_attempt(
    service: Service, llm: FakeLlmServer
) -> None:
    llm.enqueue(status(400, "prompt rejected"))
    run = await run_once(service, chain(unique_slug("r400"), 1), {"topic": "x"})
    assert run["status"] == "failed"
    step = run["steps"][0]
    assert step["attempts"] == 1
    assert [(e["number"], e["errorType"], e["retryable"]) for e in step["attemptLog"]] == [
        (1, "provider_bad_request", False)]
    assert step["error"]["details"]["status"] == 400
    assert llm.count(OPENAI_PATH) == 1


async def test_invalid_json_is_repaired_and_counted(service: Service, llm: FakeLlmServer) -> None:
    definition = chain(unique_slug("repair"), 1)
    definition["steps"][0]["outputSchema"] = QUERY_SCHEMA
    llm.enqueue(ok("Sure! Here it is: query=x", tokens_in=50, tokens_out=9),
                ok('{"query": "x"}', tokens_in=90, tokens_out=6))
    run = await run_once(service, definition, {"topic": "x"})
    assert run["status"] == "completed"
    step = run["steps"][0]
    assert step["outputJson"] == {"query": "x"}
    assert step["attempts"] == 1  # a repair is not an infrastructure retry
    [repair] = step["repairs"]
    assert (repair["number"], repair["valid"], repair["tokensIn"], repair["tokensOut"]) == (
        1, True, 90, 6)
    assert repair["cost"] == price("openai", "gpt-4o-mini", 90, 6, 0)[0]
    assert "not valid JSON" in repair["reason"]
    assert (step["tokensIn"], step["tokensOut"]) == (140, 15)
    assert run["actualCost"] == pytest.approx(step["cost"])
    assert llm.count(OPENAI_PATH) == 2


async def test_budget_stops_the_run_before_the_call_that_would_cross_it(
    service: Service, llm: FakeLlmServer
) -> None:
    definition = chain(unique_slug("budget"), 2)
    definition["maxCostUsd"] = 0.002
    definition["steps"][0]["maxTokens"] = 1000
    definition["steps"][1]["maxTokens"] = 4000
    llm.enqueue(ok("first", tokens_in=1000, tokens_out=1000))
    run = await run_once(service, definition, {"topic": "x"})
    assert run["status"] == "failed"
    assert run["error"]["type"] == "budget_exceeded"
    first, second = run["steps"]
    assert first["status"] == "completed"
    assert first["cost"] == pytest.approx(0.00075)
    assert second["status"] == "failed"
    assert second["error"]["type"] == "budget_exceeded"
    assert "the call was not made" in second["error"]["message"]
    assert second["error"]["details"]["remainingUsd"] == pytest.approx(0.00125)
    assert run["actualCost"] == pytest.approx(0.00075)
    assert llm.count(OPENAI_PATH) == 1  # the second step never reached the provider


async def test_run_request_budget_overrides_the_definition(
    service: Service, llm: FakeLlmServer
) -> None:
    definition = chain(unique_slug("budget-run"), 1)
    definition["steps"][0]["maxTokens"] = 4000
    run = await run_once(service, definition, {"topic": "x"}, maxCostUsd=0.0001)
    assert run["error"]["type"] == "budget_exceeded"
    assert llm.count() == 0


async def test_missing_key_warns_at_save_and_fails_the_run_with_directions(
    service: Service, llm: FakeLlmServer
) -> None:
    service.settings.llm.openai.api_key = None
    slug = unique_slug("nokey")
    response = await service.http.post("/api/workflows", json=chain(slug, 1))
    assert response.status_code == 201
    [warning] = response.json()["workflow"]["warnings"]
    assert "provider 'openai'" in warning
    assert "OPENAI_API_KEY" in warning
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert run["status"] == "failed"
    step = run["steps"][0]
    assert step["error"]["type"] == "missing_credentials"
    assert "set OPENAI_API_KEY" in step["error"]["message"]
    assert "https://platform.openai.com/api-keys" in step["error"]["message"]
    assert step["attempts"] == 1
    assert llm.count() == 0


async def test_missing_template_variable_fails_with_its_name(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("tmpl")
    definition = {"id": slug, "name": "t", "steps": [
        {"id": "s1", "type": "llm", "model": "gpt-4o-mini",
         "promptUser": "Write about {{ input.subject }}"}]}
    run = await run_once(service, definition, {"topic": "x"})
    assert run["status"] == "failed"
    error = run["steps"][0]["error"]
    assert error["type"] == "template_error"
    assert error["message"].startswith("promptUser: undefined variable")
    assert "'subject'" in error["message"]
    assert llm.count() == 0


async def test_usage_adds_up_to_the_runs(service: Service, llm: FakeLlmServer) -> None:
    since = datetime.now(UTC)
    slug = unique_slug("usage")
    await service.create_workflow(chain(slug, 2))
    llm.enqueue(ok("a", tokens_in=100, tokens_out=10),
                ok("b", tokens_in=200, tokens_out=20, cached=100),
                ok("c", tokens_in=300, tokens_out=30), ok("d", tokens_in=400, tokens_out=40))
    runs = [(await service.run(slug, {"topic": "x"})).json()["run"] for _ in range(2)]
    until = datetime.now(UTC) + timedelta(seconds=1)
    expected = sum(r["actualCost"] for r in runs)
    assert expected > 0

    params = {"since": since.isoformat(), "until": until.isoformat()}
    by_workflow = await service.http.get("/api/usage", params={**params, "groupBy": "workflow"})
    assert by_workflow.status_code == 200, by_workflow.text
    report = by_workflow.json()["usage"]
    [mine] = [g for g in report["groups"] if g["key"] == slug]
    assert mine["costUsd"] == pytest.approx(expected)
    assert (mine["tokensIn"], mine["tokensOut"], mine["cachedTokens"]) == (1000, 100, 100)
    assert (mine["calls"], mine["runs"]) == (4, 2)
    for group_by in ("model", "environment"):
        other = (await service.http.get("/api/usage", params={**params, "groupBy": group_by}))
        body = other.json()["usage"]
        assert body["totals"]["costUsd"] == pytest.approx(report["totals"]["costUsd"])
        assert sum(g["costUsd"] for g in body["groups"]) == pytest.approx(
            body["totals"]["costUsd"])
    by_model = (await service.http.get("/api/usage", params={**params, "groupBy": "model"}))
    assert "openai/gpt-4o-mini" in [g["key"] for g in by_model.json()["usage"]["groups"]]
    environment = (await service.http.get("/api/usage", params={**params,
                                                                 "groupBy": "environment"}))
    assert [g["key"] for g in environment.json()["usage"]["groups"]] == ["dev"]
    before = await service.http.get("/api/usage", params={"until": since.isoformat(),
                                                          "groupBy": "workflow"})
    assert slug not in [g["key"] for g in before.json()["usage"]["groups"]]
    naive = await service.http.get("/api/usage", params={"since": "2025-01-01T00:00:00"})
    assert naive.status_code == 422
    bad = await service.http.get("/api/usage", params={"groupBy": "planet"})
    assert bad.status_code == 422


async def test_models_are_refused_while_the_flag_is_off(service: Service) -> None:
    assert service.settings.workflow.multi_model is False
    definition = chain(unique_slug("flag"), 1)
    step = definition["steps"][0]
    del step["model"]
    step["models"] = [{"model": "gpt-4o-mini"}, {"model": "claude-haiku-4-5"}]
    response = await service.http.post("/api/workflows", json=definition)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["problems"][0]["pointer"] == "/steps/0/models"
    assert "workflow.multiModel" in error["problems"][0]["message"]
    assert "PROMPTPILOT_WORKFLOW__MULTI_MODEL" in error["message"]
