"""Streamed answers: llm and agent steps stream from the provider (the real SDKs against the
fake server's server-sent events), the run's event stream carries the text as `delta` events
before the step's finished event, and the concatenated deltas equal the stored output."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.cli_support import PROMPTPILOT, cli_env
from tests.conftest import DEV_KEY, Service, unique_slug
from tests.fakes.llm_server import ANTHROPIC_PATH, OPENAI_PATH, FakeLlmServer, ok, tool_calls

ANSWER = ("Otters sleep holding hands so that the current does not carry them apart, "
          "and they keep a favourite stone in a pouch of skin under each forearm.")
MODELS = [("gpt-4o-mini", OPENAI_PATH), ("anthropic/claude-3-5-haiku-latest", ANTHROPIC_PATH)]


def drafted(slug: str, model: str) -> dict[str, Any]:
    return {"id": slug, "name": "streamed", "steps": [
        {"id": "draft", "type": "llm", "model": model, "promptUser": "Tell me about otters"},
        {"id": "keep", "type": "transform", "inputMapping": {"text": "steps.draft.output"}}]}


async def events(service: Service, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event of the run's stream, in order, until it closes."""
    seen: list[tuple[str, dict[str, Any]]] = []
    async with aconnect_sse(service.http, "GET", f"/api/workflows/runs/{run_id}/events",
                            timeout=httpx.Timeout(30, read=60)) as source:
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            seen.append((event.event, json.loads(event.data)))
    return seen


async def start(service: Service, slug: str, run_input: dict[str, Any]) -> str:
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                       json={"input": run_input})
    assert response.status_code == 202, response.text
    return str(response.json()["run"]["id"])


async def stored_step(service: Service, run_id: str, step_id: str) -> dict[str, Any]:
    run = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
    assert run["status"] == "completed", run
    step: dict[str, Any] = next(s for s in run["steps"] if s["stepId"] == step_id)
    return step


@pytest.mark.parametrize(("model", "path"), MODELS)
async def test_a_streamed_llm_step_sends_its_text_before_it_completes(
        service: Service, llm: FakeLlmServer, model: str, path: str) -> None:
    # The answer starts after the subscriber is listening, and comes in chunks 80 ms apart.
    llm.enqueue(ok(ANSWER, wait=0.5, chunk_delay=0.08))
    slug = unique_slug("stream")
    await service.create_workflow(drafted(slug, model))
    run_id = await start(service, slug, {})
    seen = await events(service, run_id)

    deltas = [data for kind, data in seen if kind == "delta"]
    finished = next(i for i, (kind, data) in enumerate(seen)
                    if kind == "step" and data["stepId"] == "draft"
                    and data["status"] == "completed")
    assert len(deltas) >= 3, seen
    assert all(i < finished for i, (kind, _) in enumerate(seen) if kind == "delta")
    assert {d["stepId"] for d in deltas} == {"draft"}
    assert [d["seq"] for d in deltas] == list(range(1, len(deltas) + 1))
    step = await stored_step(service, run_id, "draft")
    assert "".join(d["text"] for d in deltas) == step["outputJson"] == ANSWER
    # The SDK asked to stream, and still counted the tokens the stream's usage reported.
    sent = next(r.body for r in llm.requests if r.path == path)
    assert sent["stream"] is True
    assert step["tokensOut"] > 0
    assert step["tokensIn"] > 0


async def test_a_late_subscriber_gets_no_deltas_of_a_finished_step(
        service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(ok(ANSWER))
    slug = unique_slug("stream-late")
    await service.create_workflow(drafted(slug, "gpt-4o-mini"))
    response = await service.run(slug, {})
    assert response.status_code == 200, response.text
    seen = await events(service, response.json()["run"]["id"])
    assert [kind for kind, _ in seen if kind == "delta"] == []
    assert seen[-1][1]["status"] == "completed"


@pytest.mark.parametrize(("model", "path"), MODELS)
async def test_an_agent_streams_its_final_turn_and_assembles_streamed_tool_calls(
        service: Service, llm: FakeLlmServer, model: str, path: str) -> None:
    llm.enqueue(tool_calls([("web_search", {"query": "otters", "limit": 3})], wait=0.5),
                ok(ANSWER, chunk_delay=0.05))
    slug = unique_slug("stream-agent")
    await service.create_workflow({"id": slug, "name": "agent", "steps": [{
        "id": "research", "type": "agent", "model": model, "promptUser": "Otters?",
        "tools": ["web_search"], "maxTurns": 3}]})
    run_id = await start(service, slug, {})
    seen = await events(service, run_id)

    step = await stored_step(service, run_id, "research")
    turns = step["rendered"]["turns"]
    # The tool call's arguments arrived in fragments and were put together.
    assert turns[0]["toolCalls"][0]["arguments"] == {"query": "otters", "limit": 3}
    deltas = [data for kind, data in seen if kind == "delta"]
    assert {d["turn"] for d in deltas} == {2}
    assert "".join(d["text"] for d in deltas) == step["outputJson"] == ANSWER
    assert len([r for r in llm.requests if r.path == path]) == 2


async def test_a_stream_cut_off_is_retried_and_the_text_starts_over(
        service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(ok(ANSWER, wait=0.5, chunk_delay=0.05, cut_after=4), ok(ANSWER))
    slug = unique_slug("stream-cut")
    definition = drafted(slug, "gpt-4o-mini")
    definition["steps"][0]["retryConfig"] = {"maxAttempts": 2, "initialIntervalSeconds": 0.1}
    await service.create_workflow(definition)
    run_id = await start(service, slug, {})
    seen = await events(service, run_id)

    step = await stored_step(service, run_id, "draft")
    assert step["attempts"] == 2
    deltas = [data for kind, data in seen if kind == "delta"]
    assert {d["attempt"] for d in deltas} == {1, 2}
    second = "".join(d["text"] for d in deltas if d["attempt"] == 2)
    assert second == step["outputJson"] == ANSWER
    assert ANSWER.startswith("".join(d["text"] for d in deltas if d["attempt"] == 1))


async def test_a_json_answer_streams_its_raw_text(service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("stream-json")
    definition = drafted(slug, "gpt-4o-mini")
    definition["steps"][0]["outputSchema"] = {
        "type": "object", "properties": {"fact": {"type": "string"}}, "required": ["fact"]}
    llm.enqueue(ok(json.dumps({"fact": ANSWER}), wait=0.3, chunk_delay=0.02))
    await service.create_workflow(definition)
    run_id = await start(service, slug, {})
    seen = await events(service, run_id)
    step = await stored_step(service, run_id, "draft")
    # A JSON answer streams as the text the model writes; the stored output is the parsed
    # value, the deltas its raw text.
    text = "".join(d["text"] for kind, d in seen if kind == "delta")
    assert json.loads(text) == step["outputJson"] == {"fact": ANSWER}


async def test_promptpilot_run_prints_the_text_as_it_comes(
        service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(ok(ANSWER, wait=0.5, chunk_delay=0.15))
    slug = unique_slug("stream-cli")
    await service.create_workflow(drafted(slug, "gpt-4o-mini"))
    follow = await asyncio.create_subprocess_exec(
        PROMPTPILOT, "run", slug, env=cli_env(url=service.url, key=DEV_KEY),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert follow.stdout is not None
    printed = b""
    # The first words are on the terminal while the model is still writing the rest.
    while b"Otters sleep" not in printed:
        chunk = await asyncio.wait_for(follow.stdout.read(64), timeout=30)
        assert chunk, printed.decode()
        printed += chunk
    assert b"completed" not in printed
    rest, errors = await asyncio.wait_for(follow.communicate(), timeout=30)
    lines = (printed + rest).decode().splitlines()
    assert follow.returncode == 0, (printed + rest + errors).decode()
    assert f"  draft | {ANSWER}" in lines
    assert any(line.split()[:2] == ["draft", "completed"] for line in lines)
    assert lines.index(f"  draft | {ANSWER}") < next(
        i for i, line in enumerate(lines) if line.split()[:2] == ["draft", "completed"])
