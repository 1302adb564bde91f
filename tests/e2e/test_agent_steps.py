"""Agent steps end to end: the model chooses tools over turns (OpenAI tool calls and Anthropic
tool use through the real SDKs against the fake server), and the step's turns are recorded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.e2e.test_replay import replayer
from tests.fakes.llm_server import ANTHROPIC_PATH, OPENAI_PATH, FakeLlmServer, ok, tool_calls
from tests.ui_login import sign_in


def agent(slug: str, model: str, **step: Any) -> dict[str, Any]:
    return {"id": slug, "name": "agent", "variables": [{"name": "topic"}], "steps": [{
        "id": "research", "type": "agent", "model": model,
        "promptSystem": "You research.", "promptUser": "Find out about {{ topic }}",
        "inputMapping": {"topic": "input.topic"}, "tools": ["web_search"], "maxTurns": 4,
        **step}]}


async def run(service: Service, definition: dict[str, Any]) -> dict[str, Any]:
    await service.create_workflow(definition)
    response = await service.run(definition["id"], {"topic": "otters"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["run"]
    return result


@pytest.mark.parametrize(("model", "path"), [("gpt-4o-mini", OPENAI_PATH),
                                             ("anthropic/claude-3-5-haiku-latest",
                                              ANTHROPIC_PATH)])
async def test_agent_searches_then_answers_in_two_turns(
        service: Service, llm: FakeLlmServer, model: str, path: str) -> None:
    llm.enqueue(tool_calls([("web_search", {"query": "otters"})], tokens_in=20),
                ok("Otters hold hands.", tokens_in=40, tokens_out=5))
    result = await run(service, agent(unique_slug("agent"), model))
    assert result["status"] == "completed", result
    step = result["steps"][0]
    assert step["outputJson"] == "Otters hold hands."
    turns = step["rendered"]["turns"]
    assert len(turns) == 2
    call = turns[0]["toolCalls"][0]
    assert call["name"] == "web_search"
    assert call["arguments"] == {"query": "otters"}
    assert "error" not in call
    assert call["result"]
    assert step["tokensIn"] == 60
    assert step["tokensOut"] == 12
    sent = [r.body for r in llm.requests if r.path == path]
    assert len(sent) == 2
    assert sent[0]["tools"][0]["name" if path == ANTHROPIC_PATH else "function"]
    second = str(sent[1]["messages"])
    # The tool's result (the offline search's answer) went back to the model.
    assert ("tool_result" if path == ANTHROPIC_PATH else "'role': 'tool'") in second
    assert "otters" in second.lower()


async def test_max_turns_fails_agent_max_turns(service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(*[tool_calls([("web_search", {"query": f"q{i}"})]) for i in range(2)])
    result = await run(service, agent(unique_slug("agentmax"), "gpt-4o-mini", maxTurns=2))
    assert result["status"] == "failed"
    step = result["steps"][0]
    assert step["error"]["type"] == "agent_max_turns"
    assert len(step["rendered"]["turns"]) == 2
    assert llm.count(OPENAI_PATH) == 2


async def test_unlisted_tool_is_refused_and_not_run(service: Service,
                                                    llm: FakeLlmServer) -> None:
    llm.enqueue(tool_calls([("http_request", {"url": "http://127.0.0.1:9/x"})]),
                ok("gave up"))
    result = await run(service, agent(unique_slug("agentno"), "gpt-4o-mini"))
    assert result["status"] == "completed"
    call = result["steps"][0]["rendered"]["turns"][0]["toolCalls"][0]
    assert call["error"] == "tool http_request is not available to this step"
    assert call.get("refused") is True
    assert "result" not in call
    second = [r.body for r in llm.requests if r.path == OPENAI_PATH][1]
    assert "not available to this step" in str(second["messages"])


@pytest.mark.parametrize(("tools", "message"), [
    (["no_such_tool"], "unknown tool 'no_such_tool'"),
    (["workflow:no-such-workflow"], "unknown workflow 'no-such-workflow'"),
    (["http_request"], "allowedHosts"),
])
async def test_save_refuses_bad_agent_tools(service: Service, tools: list[str],
                                            message: str) -> None:
    response = await service.http.post("/api/workflows", json=agent(
        unique_slug("agentbad"), "gpt-4o-mini", tools=tools))
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["problems"]
    assert any(message in p["message"] and p["pointer"].startswith("/steps/0/")
               for p in problems), problems


async def test_agent_history_replays_and_counts_events_per_turn(
        service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(tool_calls([("web_search", {"query": "a"}), ("web_search", {"query": "b"})]),
                ok("done"))
    result = await run(service, agent(unique_slug("agentreplay"), "gpt-4o-mini"))
    assert result["status"] == "completed"
    calls = result["steps"][0]["rendered"]["turns"][0]["toolCalls"]
    assert [c["arguments"]["query"] for c in calls] == ["a", "b"]
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(result["id"]).fetch_history()
    replayed = await replayer(service.settings).replay_workflow(
        history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    # Two model turns, and the turn's two tool calls as their own activities.
    assert scheduled.count("agent_turn") == 2
    assert scheduled.count("tool_call") == 2
    # Measured: 29 events for the whole run; per model turn 6 (the activity's scheduled,
    # started, completed and a workflow task's three), per tool call 3 more (plus a workflow
    # task when its result wakes the workflow). The conversation is in each turn's input
    # only, compact, with tool results cut to RESULT_CHARS.
    assert len(history.events) < 40


async def test_inspector_shows_the_conversation(service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(tool_calls([("web_search", {"query": "otters"})]), ok("Otters hold hands."))
    result = await run(service, agent(unique_slug("agentui"), "gpt-4o-mini"))
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as browser:
        await sign_in(browser)
        page = await browser.get(f"/ui/runs/{result['id']}")
    assert page.status_code == 200, page.text
    assert "Conversation (2 turns)" in page.text
    assert "web_search" in page.text


async def test_workflow_tool_runs_as_a_child_run(service: Service, llm: FakeLlmServer) -> None:
    child_slug = unique_slug("agentchild")
    await service.create_workflow({
        "id": child_slug, "name": "child", "variables": [{"name": "text"}],
        "steps": [{"id": "shout", "type": "transform", "expression": "{loud: t}",
                   "inputMapping": {"t": "input.text"}}]})
    llm.enqueue(tool_calls([(f"workflow__{child_slug}", {"text": "hi"})]), ok("ok"))
    result = await run(service, agent(unique_slug("agentwf"), "gpt-4o-mini",
                                      tools=[f"workflow:{child_slug}"]))
    assert result["status"] == "completed", result
    call = result["steps"][0]["rendered"]["turns"][0]["toolCalls"][0]
    assert call["result"] == {"loud": "hi"}, call


async def test_preview_does_not_send_an_agents_http_writes(service: Service,
                                                           llm: FakeLlmServer) -> None:
    slug = unique_slug("agentprev")
    await service.create_workflow(agent(slug, "gpt-4o-mini", tools=["http_request"],
                                        allowedHosts=["example.com"]))
    llm.enqueue(tool_calls([("http_request", {"url": "https://example.com/orders",
                                              "method": "POST"})]), ok("skipped it"))
    response = await service.http.post(f"/api/workflows/{slug}/preview",
                                       json={"input": {"topic": "x"}})
    assert response.status_code == 200, response.text
    step = response.json()["preview"]["steps"][0]
    call = step["rendered"]["turns"][0]["toolCalls"][0]
    assert "a POST is a side effect" in call["error"]
    assert "result" not in call


async def test_rerun_from_an_agent_step_runs_its_turns_again(service: Service,
                                                             llm: FakeLlmServer) -> None:
    llm.enqueue(ok("first"))
    first = await run(service, agent(slug := unique_slug("agentrerun"), "gpt-4o-mini"))
    assert first["steps"][0]["outputJson"] == "first"
    llm.enqueue(tool_calls([("web_search", {"query": "again"})]), ok("second"))
    response = await service.run(slug, {"topic": "otters"}, fromStepId="research",
                                 sourceRunId=first["id"])
    assert response.status_code == 200, response.text
    rerun = response.json()["run"]
    assert rerun["steps"][0]["outputJson"] == "second"
    assert len(rerun["steps"][0]["rendered"]["turns"]) == 2
