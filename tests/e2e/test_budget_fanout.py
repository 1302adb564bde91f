"""Budgets hold under fan-out: map items, parallel branches and child runs draw from one ledger.

Each model call reserves its worst case before it starts; a map of ten llm items on a budget
that fits three calls makes three calls, not ten, whatever the concurrency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.budget import estimated_prompt_tokens
from activities.pricing import price
from schema.activities import LlmRequest
from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok

MAX_TOKENS = 1000
PROMPT = "Write a line about {{topic}}"


def _worst_case(topic: str) -> tuple[float, int]:
    """The reservation one item's call makes (what the ledger holds), and its prompt tokens."""
    request = LlmRequest(run_id="r", step_id="s", provider="openai", model="gpt-4o-mini",
                         user=PROMPT.replace("{{topic}}", topic), max_tokens=MAX_TOKENS)
    tokens = estimated_prompt_tokens(request)
    cost, _ = price("openai", "gpt-4o-mini", tokens, MAX_TOKENS, 0)
    assert cost is not None
    return cost, tokens


def _llm_step(step_id: str, mapping: dict[str, str]) -> dict[str, Any]:
    return {"id": step_id, "type": "llm", "model": "gpt-4o-mini", "promptUser": PROMPT,
            "maxTokens": MAX_TOKENS, "inputMapping": mapping}


def _map_of_llm(slug: str, concurrency: int, budget: float) -> dict[str, Any]:
    return {"id": slug, "name": "fan-out on a budget", "maxCostUsd": budget,
            "variables": [{"name": "topics", "type": "array", "required": True}],
            "steps": [{"id": "each", "type": "map", "items": "input.topics",
                       "concurrency": concurrency,
                       "steps": [_llm_step("write", {"topic": "input.item"})]}]}


def _script(llm: FakeLlmServer, calls: int, prompt_tokens: int) -> float:
    """Answers that cost just under the worst case (the whole maxTokens, the prompt as
    estimated less a little); returns what one such answer costs."""
    llm.enqueue(*(ok("a line", tokens_in=prompt_tokens - 2, tokens_out=MAX_TOKENS)
                  for _ in range(calls)))
    cost, _ = price("openai", "gpt-4o-mini", prompt_tokens - 2, MAX_TOKENS, 0)
    assert cost is not None
    return cost


@pytest.mark.parametrize("concurrency", [10, 20])
async def test_a_map_on_a_budget_makes_only_the_calls_that_fit(
        service: Service, llm: FakeLlmServer, concurrency: int) -> None:
    topics = [f"topic-{i}" for i in range(10)]
    worst, tokens = _worst_case(topics[0])
    actual = _script(llm, 10, tokens)
    budget = 3.5 * worst  # three calls fit at their worst case; a fourth does not
    slug = unique_slug("fanout")
    await service.create_workflow(_map_of_llm(slug, concurrency, budget))

    response = await service.run(slug, {"topics": topics})

    run = response.json()["run"]
    assert run["status"] == "failed"
    assert llm.count(OPENAI_PATH) == 3  # before the ledger: all 10 (3.3x the budget)
    assert run["actualCost"] == pytest.approx(3 * actual)
    assert run["actualCost"] <= budget
    each = next(s for s in run["steps"] if s["stepId"] == "each")
    assert each["mapItems"]["completed"] == 3
    assert each["mapItems"]["failed"] == 7
    refused = each["mapItems"]["errors"][0]
    assert refused["type"] == "budget_exceeded"
    assert "the call was not made" in refused["message"]


async def test_parallel_branches_share_the_budget(
        service: Service, llm: FakeLlmServer) -> None:
    worst, tokens = _worst_case("x")
    actual = _script(llm, 4, tokens)
    budget = 2.5 * worst
    slug = unique_slug("branches")
    branches = [[_llm_step(f"b{i}", {"topic": "input.topic"})] for i in range(4)]
    await service.create_workflow({
        "id": slug, "name": "branches on a budget", "maxCostUsd": budget,
        "variables": [{"name": "topic", "type": "string", "required": True}],
        "steps": [{"id": "fan", "type": "parallel", "branches": branches,
                   "failFast": False}]})

    run = (await service.run(slug, {"topic": "x"})).json()["run"]

    assert llm.count(OPENAI_PATH) == 2  # each branch used to see the whole budget: 4 calls
    assert run["actualCost"] == pytest.approx(2 * actual)
    refused = [s for s in run["steps"] if (s.get("error") or {}).get("type")
               == "budget_exceeded" and s["stepId"].startswith("b")]
    assert len(refused) == 2


async def test_child_runs_in_parallel_spend_within_what_their_parent_has_left(
        service: Service, llm: FakeLlmServer) -> None:
    worst, tokens = _worst_case("x")
    actual = _script(llm, 4, tokens)
    child = unique_slug("child")
    await service.create_workflow({
        "id": child, "name": "two calls",
        "variables": [{"name": "topic", "type": "string", "required": True}],
        "steps": [_llm_step("c1", {"topic": "input.topic"}),
                  _llm_step("c2", {"topic": "input.topic"})]})
    parent = unique_slug("parent")
    call_child = {"type": "workflow", "workflowSlug": child,
                  "inputMapping": {"topic": "input.topic"}}
    await service.create_workflow({
        "id": parent, "name": "two children at once", "maxCostUsd": 2.5 * worst,
        "variables": [{"name": "topic", "type": "string", "required": True}],
        "steps": [{"id": "fan", "type": "parallel", "branches": [
            [{"id": "left", **call_child}], [{"id": "right", **call_child}]]}]})

    run = (await service.run(parent, {"topic": "x"})).json()["run"]

    assert run["status"] == "failed"
    # One child is granted what is left and makes both its calls; the other waits for it,
    # then has too little for one. Each child used to see the whole budget: 4 calls.
    assert llm.count(OPENAI_PATH) == 2
    assert run["actualCost"] == pytest.approx(2 * actual)
    assert run["actualCost"] <= 2.5 * worst
    children = {s["stepId"]: s for s in run["steps"] if s["stepId"] in ("left", "right")}
    assert sorted(s["status"] for s in children.values()) == ["completed", "failed"]
    failed = next(s for s in children.values() if s["status"] == "failed")
    assert failed["error"]["type"] == "budget_exceeded"


async def test_usage_counts_map_items_and_child_runs(
        service: Service, llm: FakeLlmServer) -> None:
    since = datetime.now(UTC)
    child = unique_slug("usage-child")
    await service.create_workflow({
        "id": child, "name": "one call",
        "variables": [{"name": "topic", "type": "array", "required": True}],
        "steps": [_llm_step("c1", {"topic": "input.topic"})]})
    parent = unique_slug("usage-map")
    await service.create_workflow({
        "id": parent, "name": "a map of calls, then a child",
        "variables": [{"name": "topics", "type": "array", "required": True}],
        "steps": [{"id": "each", "type": "map", "items": "input.topics", "concurrency": 4,
                   "batchSize": 2, "steps": [_llm_step("write", {"topic": "input.item"})]},
                  {"id": "sub", "type": "workflow", "workflowSlug": child,
                   "inputMapping": {"topic": "input.topics"}}]})
    llm.enqueue(*(ok("a line", tokens_in=100, tokens_out=10) for _ in range(6)))

    run = (await service.run(parent, {"topics": ["a", "b", "c", "d", "e"]})).json()["run"]

    assert run["status"] == "completed", run.get("error")
    assert llm.count(OPENAI_PATH) == 6
    report = (await service.http.get("/api/usage", params={
        "since": since.isoformat(), "groupBy": "model"})).json()["usage"]
    # The five map items (not mirrored as rows) and the child run's call: six calls, all of
    # the run's spend. The map items were missing before.
    assert report["totals"]["calls"] == 6
    assert report["totals"]["tokensIn"] == 600
    assert report["totals"]["costUsd"] == pytest.approx(run["actualCost"])
    [line] = [g for g in report["groups"] if g["key"] == "openai/gpt-4o-mini"]
    assert line["calls"] == 6
