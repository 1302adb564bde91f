"""The llm_call activity's attempt log, structured-output repair and budget refusal (unit level)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.budget import estimated_prompt_tokens, worst_case_cost
from activities.llm import LlmActivities
from activities.pricing import price
from promptpilot.llm_settings import AnthropicSettings, LlmSettings, OpenAISettings
from promptpilot.settings import Settings
from schema.activities import LlmRequest, LlmResult
from schema.errors import ErrorType
from tests.fakes import FakeLlmServer, ok, rate_limited, status
from tests.fakes.llm_server import OPENAI_PATH

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"],
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
async def llm(server: FakeLlmServer) -> AsyncIterator[LlmActivities]:
    server.reset()
    activities = LlmActivities(Settings(llm=LlmSettings(
        openai=OpenAISettings(api_key=SecretStr("sk-test"), base_url=server.openai_base_url),
        anthropic=AnthropicSettings(api_key=SecretStr("sk-ant-test"),
                                    base_url=server.anthropic_base_url),
        request_timeout_seconds=5,
    )))
    yield activities
    await activities.aclose()


def req(**kw: Any) -> LlmRequest:
    kw.setdefault("model", "gpt-4o-mini")
    return LlmRequest(run_id="run-1", step_id="step-1", provider="openai",
                      user=kw.pop("user", "Find RSS feeds about Python asyncio"), **kw)


def env_for(attempt: int = 1, heartbeat_details: list[Any] | None = None,
            beats: list[Any] | None = None) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt,
                                   heartbeat_details=heartbeat_details or [])
    if beats is not None:
        env.on_heartbeat = lambda *details: beats.append(details)
    return env


async def failure(llm: LlmActivities, request: LlmRequest,
                  env: ActivityEnvironment | None = None) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await (env or env_for()).run(llm.call, request)
    return caught.value


async def test_invalid_json_is_repaired_once_and_counted_apart(
    llm: LlmActivities, server: FakeLlmServer
) -> None:
    server.enqueue(ok("not json", tokens_in=50, tokens_out=5),
                   ok('{"query": "asyncio rss"}', tokens_in=80, tokens_out=7))
    result: LlmResult = await env_for().run(
        llm.call, req(output_schema=QUERY_SCHEMA, repair_attempts=2))
    assert result.output == {"query": "asyncio rss"}
    assert result.attempt == 1
    assert [(r.number, r.valid, r.tokens_in, r.tokens_out) for r in result.repairs] == [
        (1, True, 80, 7)]
    assert "not valid JSON" in result.repairs[0].reason
    assert result.repairs[0].cost == price("openai", "gpt-4o-mini", 80, 7, 0)[0]
    assert (result.tokens_in, result.tokens_out) == (130, 12)
    assert result.cost == pytest.approx(price("openai", "gpt-4o-mini", 130, 12, 0)[0])
    assert "output repaired after 1 repair attempt(s)" in result.warnings
    repair_prompt = server.requests[1].body["messages"][-1]["content"]
    assert repair_prompt.startswith("Find RSS feeds about Python asyncio")
    assert "Previous answer:\nnot json" in repair_prompt
    assert server.count(OPENAI_PATH) == 2


async def test_repairs_exhausted_fail_non_retryably_with_last_errors(
    llm: LlmActivities, server: FakeLlmServer
) -> None:
    server.enqueue(ok("nope", tokens_in=10, tokens_out=1),
                   ok(json.dumps({"query": 7}), tokens_in=20, tokens_out=3))
    error = await failure(llm, req(output_schema=QUERY_SCHEMA, repair_attempts=1))
    assert error.type == ErrorType.OUTPUT_SCHEMA
    assert error.non_retryable
    assert "at /query: 7 is not of type 'string'" in error.message
    details = error.details[0]
    assert details["attempt"] == 1
    assert details["errors"] == [{"path": "/query", "message": "7 is not of type 'string'"}]
    assert [(r["number"], r["valid"], r["tokensIn"]) for r in details["repairs"]] == [
        (1, False, 20)]
    assert details["usage"]["tokensIn"] == 30
    assert details["usage"]["cost"] > 0
    assert details["attemptLog"][0]["errorType"] == ErrorType.OUTPUT_SCHEMA
    assert server.count() == 2


async def test_repair_attempts_zero_disables_repair(
    llm: LlmActivities, server: FakeLlmServer
) -> None:
    server.enqueue(ok("nope"))
    error = await failure(llm, req(output_schema=QUERY_SCHEMA, repair_attempts=0))
    assert error.type == ErrorType.OUTPUT_SCHEMA
    assert server.count() == 1


async def test_failed_attempt_is_logged_in_details_and_heartbeat(
    llm: LlmActivities, server: FakeLlmServer
) -> None:
    server.enqueue(rate_limited(retry_after=2))
    beats: list[Any] = []
    error = await failure(llm, req(), env_for(beats=beats))
    entry = error.details[0]["attemptLog"][0]
    assert error.details[0]["attempt"] == 1
    assert (entry["number"], entry["status"], entry["errorType"]) == (
        1, "failed", ErrorType.PROVIDER_RATE_LIMITED)
    assert entry["retryDelaySeconds"] == 2.0
    assert entry["retryable"] is True
    assert entry["model"] == "openai/gpt-4o-mini"
    assert "rate limited" in entry["message"]
    # The last heartbeat carries the log to the next attempt.
    assert beats[-1] == (error.details[0]["attemptLog"],)


async def test_next_attempt_continues_the_log_and_fills_gaps(
    llm: LlmActivities, server: FakeLlmServer
) -> None:
    first = {"number": 1, "status": "failed", "errorType": "provider_rate_limited",
             "message": "openai answered HTTP 429: rate limited", "retryDelaySeconds": 2.0}
    result: LlmResult = await env_for(attempt=3, heartbeat_details=[[first]]).run(
        llm.call, req())
    assert result.attempt == 3
    log = result.attempt_log
    assert [(e.number, e.status, e.error_type) for e in log] == [
        (1, "failed", "provider_rate_limited"), (2, "failed", "attempt_lost"),
        (3, "completed", None)]
    assert log[2].started_at is not None
    assert log[2].finished_at is not None


async def test_client_error_carries_attempt_number(
    llm: LlmActivities, server: FakeLlmServer
) -> None:
    server.enqueue(status(400, "bad prompt"))
    error = await failure(llm, req(), env_for(attempt=1))
    assert error.non_retryable
    assert error.details[0]["attempt"] == 1
    assert error.details[0]["status"] == 400
    assert error.details[0]["attemptLog"][0]["retryDelaySeconds"] is None


async def test_budget_refuses_before_calling(llm: LlmActivities, server: FakeLlmServer) -> None:
    request = req(max_tokens=4000, budget_usd=0.001)
    estimate = worst_case_cost("openai", "gpt-4o-mini", request)
    assert estimate is not None
    assert estimate > 0.001
    error = await failure(llm, request)
    assert error.type == ErrorType.BUDGET_EXCEEDED
    assert error.non_retryable
    assert "the call was not made" in error.message
    assert error.details[0]["estimateUsd"] == pytest.approx(estimate)
    assert server.count() == 0


async def test_budget_allows_a_call_that_fits(llm: LlmActivities, server: FakeLlmServer) -> None:
    result: LlmResult = await env_for().run(llm.call, req(max_tokens=100, budget_usd=0.01))
    assert result.cost is not None
    assert result.cost < 0.01
    assert server.count() == 1


async def test_budget_with_unpriced_model_warns(llm: LlmActivities, server: FakeLlmServer) -> None:
    result: LlmResult = await env_for().run(
        llm.call, req(model="gpt-unpriced-xyz", budget_usd=0.000001))
    assert any("cannot be enforced" in w for w in result.warnings)
    assert result.cost is None


def test_prompt_estimate_is_pessimistic() -> None:
    request = req(user="x" * 300, system="y" * 30)
    assert estimated_prompt_tokens(request) >= 330 / 4


def test_cached_tokens_are_priced_at_the_cache_rate() -> None:
    full, _ = price("openai", "gpt-4o-mini", 1000, 0, 0)
    cached, _ = price("openai", "gpt-4o-mini", 1000, 0, 1000)
    assert full is not None
    assert cached is not None
    assert cached == pytest.approx(full / 2)
    anthropic_cached, _ = price("anthropic", "claude-haiku-4-5", 1000, 0, 1000)
    anthropic_full, _ = price("anthropic", "claude-haiku-4-5", 1000, 0, 0)
    assert anthropic_cached is not None
    assert anthropic_full is not None
    assert anthropic_cached == pytest.approx(anthropic_full / 10)
