"""Recorded model answers: every model call and agent turn is recorded, and an identical one
made with ``llmCache: use`` (the default for previews) is answered from the record: no model
call, cost 0, the step (or turn) pointing at the call its answer came from."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from promptpilot.llm_settings import LlmCacheSettings
from promptpilot.settings import Settings
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.e2e.test_agent_steps import agent
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok, tool_calls
from tests.ui_login import sign_in


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The product's defaults for recorded answers (the suite turns them off for previews)."""
    settings.llm_cache = LlmCacheSettings()
    assert (settings.llm_cache.previews, settings.llm_cache.runs) == ("use", "off")
    return settings


async def _preview(service: Service, definition: dict[str, Any], topic: str,
                   **body: Any) -> dict[str, Any]:
    response = await service.http.post("/api/workflows/preview", json={
        "definition": definition, "input": {"topic": topic}, **body})
    assert response.status_code == 200, response.text
    preview: dict[str, Any] = response.json()["preview"]
    return preview


async def test_an_identical_preview_is_answered_from_the_record(
        service: Service, llm: FakeLlmServer) -> None:
    definition = chain(unique_slug("rec"), 2)
    llm.enqueue(ok("first answer", tokens_in=80, tokens_out=8),
                ok("second answer", tokens_in=90, tokens_out=9))

    topic = unique_slug("tides")  # no other test's call was recorded with this prompt
    first = await _preview(service, definition, topic)
    calls = llm.count(OPENAI_PATH)
    again = await _preview(service, definition, topic)

    assert calls == 2
    assert llm.count(OPENAI_PATH) == 2  # the second preview called no model
    assert again["output"] == first["output"]
    for before, step in zip(first["steps"], again["steps"], strict=True):
        assert step["output"] == before["output"]
        assert step["cost"] == 0
        assert step["cachedFrom"]["runId"] == first["previewId"]
        assert step["cachedFrom"]["stepId"] == step["stepId"]
        assert any("recorded call" in w for w in step["warnings"])
    assert first["steps"][0]["cost"] > 0
    assert first["steps"][0]["cachedFrom"] is None


async def test_a_changed_prompt_or_input_misses_the_record(
        service: Service, llm: FakeLlmServer) -> None:
    definition = chain(unique_slug("rec-miss"), 1)
    rivers, lakes = unique_slug("rivers"), unique_slug("lakes")
    await _preview(service, definition, rivers)
    await _preview(service, definition, lakes)  # another input: another prompt
    definition["steps"][0]["promptUser"] = "Begin with {{topic}}"
    changed = await _preview(service, definition, rivers)
    off = await _preview(service, chain(definition["id"], 1), rivers, llmCache="off")

    assert llm.count(OPENAI_PATH) == 4
    assert changed["steps"][0]["cachedFrom"] is None
    assert off["steps"][0]["cachedFrom"] is None


async def test_runs_call_the_model_unless_they_say_use(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("rec-run")
    await service.create_workflow(chain(slug, 1))
    topic = unique_slug("x")
    first = (await service.run(slug, {"topic": topic})).json()["run"]
    second = (await service.run(slug, {"topic": topic})).json()["run"]  # runs: off by default
    used = (await service.run(slug, {"topic": topic}, llmCache="use")).json()["run"]

    assert [r["status"] for r in (first, second, used)] == ["completed"] * 3
    assert llm.count(OPENAI_PATH) == 2
    step = used["steps"][0]
    assert step["cachedFrom"]["runId"] == second["id"]  # the latest recording of the call
    assert (step["cost"], step["tokensIn"]) == (0, 0)
    assert used["actualCost"] == 0
    assert step["outputJson"] == second["steps"][0]["outputJson"]


async def test_a_preview_estimates_before_calling_and_keeps_to_its_budget(
        service: Service, llm: FakeLlmServer) -> None:
    definition = chain(unique_slug("estimate"), 2)
    for step in definition["steps"]:
        step["maxTokens"] = 500
    topic = unique_slug("glaciers")

    capped = await _preview(service, definition, topic, maxCostUsd=0.0000001)
    assert llm.count(OPENAI_PATH) == 0  # no call fits so small a budget
    assert capped["steps"][0]["error"]["type"] == "budget_exceeded"
    before = capped["tokenEstimates"]["beforeCall"]
    assert "before any call" in before["basis"]
    assert before["calls"] == 2
    assert before["outputTokens"] == 1000
    assert before["inputTokens"] > 0
    assert before["costUsd"] > 0.0000001

    spent = await _preview(service, definition, topic, llmCache="off")
    assert llm.count(OPENAI_PATH) == 2
    actual = spent["tokenEstimates"]
    assert actual["beforeCall"]["costUsd"] == pytest.approx(before["costUsd"])
    assert actual["estimatedCost"] <= before["costUsd"]  # the estimate is the worst case


async def test_an_agents_turns_are_answered_from_the_record_and_its_tools_still_run(
        service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("rec-agent")
    await service.create_workflow(agent(slug, "gpt-4o-mini"))
    topic = unique_slug("otters")  # no other test's turn was recorded with this prompt
    llm.enqueue(tool_calls([("web_search", {"query": topic})], tokens_in=20),
                ok("Otters hold hands.", tokens_in=40, tokens_out=5))
    first = (await service.run(slug, {"topic": topic})).json()["run"]
    calls = llm.count(OPENAI_PATH)
    used = (await service.run(slug, {"topic": topic}, llmCache="use")).json()["run"]

    assert [r["status"] for r in (first, used)] == ["completed"] * 2
    assert calls == 2
    assert llm.count(OPENAI_PATH) == 2  # neither turn called the model again
    step, before = used["steps"][0], first["steps"][0]
    assert step["outputJson"] == before["outputJson"] == "Otters hold hands."
    assert (step["cost"], step["tokensIn"], step["tokensOut"]) == (0, 0, 0)
    assert used["actualCost"] == 0
    turns = step["rendered"]["turns"]
    assert [t["cachedFrom"]["runId"] for t in turns] == [first["id"]] * 2
    assert all(t["cachedFrom"]["stepId"] == "research" for t in turns)
    assert all("cachedFrom" not in t for t in before["rendered"]["turns"])
    assert sum("recorded turn" in w for w in step["warnings"]) == 2
    # The recorded turn's tool call was made again: tools are not answered from the record.
    [call] = turns[0]["toolCalls"]
    assert call["name"] == "web_search"
    assert call["result"] == before["rendered"]["turns"][0]["toolCalls"][0]["result"]

    # The inspector says where each turn's answer came from.
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as browser:
        await sign_in(browser)
        page = (await browser.get(f"/ui/runs/{used['id']}")).text
    assert page.count("<span class=\"cached\">answered from the recorded turn of run") == 2
    assert f'href="/ui/runs/{first["id"]}"' in page

    # Another conversation (another topic) misses the record and calls the model.
    llm.enqueue(ok("Seals do not.", tokens_in=30, tokens_out=4))
    other = (await service.run(slug, {"topic": unique_slug("seals")}, llmCache="use")).json()
    assert other["run"]["steps"][0]["outputJson"] == "Seals do not."
    assert "cachedFrom" not in other["run"]["steps"][0]["rendered"]["turns"][0]
    assert llm.count(OPENAI_PATH) == 3
