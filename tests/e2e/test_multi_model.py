"""Multi-model llm steps end to end (seed 003 section 5), with the multiModel flag on or off."""

from __future__ import annotations

from typing import Any

import pytest

from promptpilot.llm_settings import CompatibleProvider
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.e2e.test_replay import replayer
from tests.fakes.llm_server import ANTHROPIC_PATH, OPENAI_PATH, FakeLlmServer, ok, status


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The flag on, and a provider nobody listens for (connection refused)."""
    settings.workflow.multi_model = True
    settings.llm.compatible["down"] = CompatibleProvider(base_url="http://127.0.0.1:9/v1")
    return settings


def multi(slug: str, mode: str, models: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": slug, "name": f"{mode} models", **extra, "steps": [
        {"id": "ask", "type": "llm", "mode": mode, "models": models,
         "promptUser": "Summarise {{input.topic}}",
         "retryConfig": {"maxAttempts": 2, "initialIntervalSeconds": 0.1}},
        {"id": "after", "type": "transform", "inputMapping": {"answer": "outputs.ask"}}]}


async def test_parallel_takes_the_first_model_that_answered_and_warns(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("par")
    models = [{"provider": "down", "model": "llama3"}, {"model": "gpt-4o-mini"}]
    await service.create_workflow(multi(slug, "parallel", models))
    llm.enqueue(ok("from openai", tokens_in=100, tokens_out=10))
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert run["status"] == "completed", run
    ask, after = run["steps"]
    assert ask["outputJson"] == "from openai"
    assert after["outputJson"] == {"answer": "from openai"}
    assert (ask["provider"], ask["model"]) == ("openai", "gpt-4o-mini")
    down, openai = ask["modelOutputs"]
    assert (down["status"], down["error"]["type"], down["attempts"], down["retries"]) == (
        "failed", "provider_unavailable", 2, 1)
    assert (openai["status"], openai["content"], openai["tokensIn"]) == (
        "completed", "from openai", 100)
    assert openai["latencyMs"] > 0
    assert ask["aggregateTokens"]["tokensIn"] == 100
    assert ask["aggregateTokens"]["cost"] == pytest.approx(openai["cost"])
    assert len(ask["warnings"]) == 1
    assert ask["warnings"][0].startswith("down/llama3 failed (provider_unavailable)")
    assert "output taken from openai/gpt-4o-mini" in ask["warnings"][0]
    assert {e["model"] for e in ask["attemptLog"]} == {"down/llama3", "openai/gpt-4o-mini"}
    assert llm.count(OPENAI_PATH) == 1

    # The fan-out (asyncio.gather of activities) replays deterministically.
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    result = await replayer(service.settings).replay_workflow(history,
                                                              raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_fallback_tries_the_next_model_when_one_fails(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("fb")
    models: list[dict[str, Any]] = [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "anthropic", "model": "claude-haiku-4-5", "maxTokens": 200}]
    await service.create_workflow(multi(slug, "fallback", models, maxCostUsd=1.0))
    llm.enqueue(status(400, "nope"), ok("from claude", tokens_in=40, tokens_out=4))
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert run["status"] == "completed", run
    ask = run["steps"][0]
    assert ask["outputJson"] == "from claude"
    assert (ask["provider"], ask["model"]) == ("anthropic", "claude-haiku-4-5")
    first, second = ask["modelOutputs"]
    assert (first["status"], first["error"]["type"], first["attempts"]) == (
        "failed", "provider_bad_request", 1)
    assert (second["status"], second["content"], second["tokensOut"]) == (
        "completed", "from claude", 4)
    assert ask["warnings"] == [
        "openai/gpt-4o-mini failed (provider_bad_request): openai answered HTTP 400: nope; "
        "output taken from anthropic/claude-haiku-4-5"]
    assert ask["cost"] == pytest.approx(second["cost"])
    assert run["actualCost"] == pytest.approx(ask["cost"])
    assert (llm.count(OPENAI_PATH), llm.count(ANTHROPIC_PATH)) == (1, 1)


async def test_fallback_skips_later_models_once_one_answered(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("fb-ok")
    models = [{"model": "gpt-4o-mini"}, {"model": "claude-haiku-4-5"}]
    await service.create_workflow(multi(slug, "fallback", models))
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    ask = run["steps"][0]
    assert [m["status"] for m in ask["modelOutputs"]] == ["completed", "skipped"]
    assert ask["warnings"] == []
    assert llm.count(ANTHROPIC_PATH) == 0


async def test_every_model_failing_fails_the_step(service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("fb-fail")
    models = [{"model": "gpt-4o-mini"}, {"model": "claude-haiku-4-5"}]
    await service.create_workflow(multi(slug, "fallback", models))
    llm.enqueue(status(400, "no"), status(401, "bad key"))
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert run["status"] == "failed"
    ask = run["steps"][0]
    assert ask["error"]["type"] == "provider_auth"
    assert ask["error"]["message"].startswith("all 2 models failed: openai/gpt-4o-mini: ")
    assert [m["status"] for m in ask["modelOutputs"]] == ["failed", "failed"]
    assert ask["attempts"] == 2


async def test_an_unsaved_multi_model_definition_previews_with_its_model_outputs(
    service: Service, llm: FakeLlmServer
) -> None:
    definition = multi(unique_slug("pre"), "fallback",
                       [{"model": "gpt-4o-mini"}, {"model": "claude-haiku-4-5"}])
    llm.enqueue(ok("first", tokens_in=50, tokens_out=5))
    response = await service.http.post("/api/workflows/preview", json={
        "definition": definition, "input": {"topic": "x"}})
    assert response.status_code == 200, response.text  # was 422 with the flag on
    ask = response.json()["preview"]["steps"][0]
    assert [m["status"] for m in ask["modelOutputs"]] == ["completed", "skipped"]
    assert ask["aggregateTokens"]["tokensIn"] == 50


async def test_a_rerun_overrides_a_multi_model_step(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = unique_slug("rerun-multi")
    models = [{"model": "gpt-4o-mini"}, {"model": "claude-haiku-4-5"}]
    await service.create_workflow(multi(slug, "fallback", models))
    first = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert first["status"] == "completed", first
    rerun = await service.http.post(f"/api/workflows/runs/{first['id']}/rerun", json={
        "fromStepId": "ask",
        "stepOverrides": {"ask": {"promptUser": "Shorter: {{input.topic}}"}}})
    assert rerun.status_code in (200, 202), rerun.text  # was 422 with the flag on
    run = rerun.json()["run"]
    ask = next(s for s in run["steps"] if s["stepId"] == "ask")
    assert ask["rendered"]["user"] == "Shorter: x"
