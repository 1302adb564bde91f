"""The llm_call activity against the real OpenAI and Anthropic SDKs and a local fake server."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import LlmActivities
from activities.pricing import price
from activities.providers.errors import retry_after
from activities.providers.offline import example_for_schema
from activities.providers.registry import (
    known_providers,
    providers_missing_credentials,
    resolve_model,
)
from activities.streaming import Streams
from promptpilot.llm_settings import (
    AnthropicSettings,
    CompatibleProvider,
    LlmSettings,
    OpenAISettings,
)
from promptpilot.settings import Settings
from schema.activities import LlmRequest, LlmResult
from schema.errors import ErrorType
from tests.fakes import (
    FakeLlmServer,
    hang,
    malformed_json,
    ok,
    overloaded_529,
    rate_limited,
    server_error,
    status,
)
from tests.fakes.llm_server import ANTHROPIC_PATH, OPENAI_PATH

QUERY_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"],
}

MakeLlm = Callable[[Settings], LlmActivities]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeLlmServer) -> FakeLlmServer:
    server.reset()
    return server


def make_settings(server: FakeLlmServer, *, openai_key: str | None = "sk-test",
                  timeout: float = 5.0) -> Settings:
    return Settings(llm=LlmSettings(
        openai=OpenAISettings(api_key=SecretStr(openai_key) if openai_key else None,
                              base_url=server.openai_base_url),
        anthropic=AnthropicSettings(api_key=SecretStr("sk-ant-test"),
                                    base_url=server.anthropic_base_url),
        compatible={"local": CompatibleProvider(base_url=server.openai_base_url)},
        request_timeout_seconds=timeout,
    ))


@pytest.fixture
async def llm(fake: FakeLlmServer) -> AsyncIterator[LlmActivities]:
    activities = LlmActivities(make_settings(fake))
    yield activities
    await activities.aclose()


@pytest.fixture
async def make_llm() -> AsyncIterator[MakeLlm]:
    built: list[LlmActivities] = []

    def make(settings: Settings) -> LlmActivities:
        built.append(LlmActivities(settings))
        return built[-1]

    yield make
    for activities in built:
        await activities.aclose()


def req(model: str = "gpt-4o-mini", provider: str = "openai", **kw: Any) -> LlmRequest:
    return LlmRequest(run_id="run-1", step_id="step-1", provider=provider, model=model,
                      user=kw.pop("user", "Find RSS feeds about Python asyncio"), **kw)


async def run(llm: LlmActivities, request: LlmRequest, attempt: int = 1) -> LlmResult:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    result: LlmResult = await env.run(llm.call, request)
    return result


async def failure(llm: LlmActivities, request: LlmRequest, attempt: int = 1) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(llm, request, attempt)
    return caught.value


async def test_openai_success_counts_tokens_and_cost(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    fake.enqueue(ok("Hello there", tokens_in=1000, tokens_out=200, cached=100))
    result = await run(llm, req(system="Be brief.", temperature=0.2, max_tokens=50))
    assert (result.output, result.text) == ("Hello there", "Hello there")
    assert (result.tokens_in, result.tokens_out, result.cached_tokens) == (1000, 200, 100)
    assert result.cost is not None
    assert result.cost > 0
    assert result.warnings == []
    assert (result.provider, result.model, result.attempt) == ("openai", "gpt-4o-mini", 1)
    body = fake.requests[0].body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["max_completion_tokens"] == 50
    assert fake.requests[0].headers["authorization"] == "<redacted>"
    assert fake.count(OPENAI_PATH) == 1


async def test_anthropic_success_counts_tokens_and_cost(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    fake.enqueue(ok("Bonjour", tokens_in=500, tokens_out=40, cached=200))
    result = await run(llm, req("claude-haiku-4-5", "anthropic"))
    assert result.output == "Bonjour"
    assert (result.tokens_in, result.tokens_out, result.cached_tokens) == (500, 40, 200)
    assert result.cost is not None
    assert result.cost > 0
    assert fake.count(ANTHROPIC_PATH) == 1
    assert fake.requests[0].body["max_tokens"] > 0


async def test_anthropic_cache_writes_and_reads_are_priced_at_their_own_rates(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    # 10,000 prompt tokens: 6,000 written to the cache, 3,000 read from it, 1,000 plain.
    fake.enqueue(ok("Bonjour", tokens_in=10_000, tokens_out=100, cached=3_000,
                    cache_written=6_000))
    result = await run(llm, req("claude-haiku-4-5", "anthropic"))
    assert (result.tokens_in, result.cached_tokens) == (10_000, 3_000)
    def priced(**usage: int) -> float:
        return float(calc_price(Usage(**usage), "claude-haiku-4-5",
                                provider_id="anthropic").total_price)

    assert result.cost == pytest.approx(priced(
        input_tokens=10_000, output_tokens=100, cache_read_tokens=3_000,
        cache_write_tokens=6_000))
    # Cache writes cost more than plain input (1.25x for Anthropic): priced as input they
    # were under-counted.
    assert result.cost is not None
    assert result.cost > priced(input_tokens=10_000, output_tokens=100, cache_read_tokens=3_000)


@pytest.mark.parametrize(("model", "provider"), [
    ("gpt-4o-mini", "openai"), ("claude-haiku-4-5", "anthropic"),
])
async def test_output_schema_valid_answer_is_parsed(
    llm: LlmActivities, fake: FakeLlmServer, model: str, provider: str
) -> None:
    result = await run(llm, req(model, provider, output_schema=QUERY_SCHEMA))
    assert isinstance(result.output, dict)
    assert "python" in result.output["query"]
    body = fake.requests[0].body
    if provider == "openai":
        assert body["response_format"]["json_schema"]["schema"] == QUERY_SCHEMA
    else:
        assert '"required": ["query"]' in body["system"]


async def test_output_schema_violation_is_not_retryable(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    fake.enqueue(ok(json.dumps({"query": 42})), ok("not json at all"))
    error = await failure(llm, req(output_schema=QUERY_SCHEMA))
    assert error.type == ErrorType.OUTPUT_SCHEMA
    assert error.non_retryable
    assert "at /query: 42 is not of type 'string'" in error.message
    error = await failure(llm, req(output_schema=QUERY_SCHEMA))
    assert error.type == ErrorType.OUTPUT_SCHEMA
    assert "not valid JSON" in error.message


async def test_fenced_json_is_accepted(llm: LlmActivities, fake: FakeLlmServer) -> None:
    fake.enqueue(ok('```json\n{"query": "x"}\n```'))
    assert (await run(llm, req(output_schema=QUERY_SCHEMA))).output == {"query": "x"}


async def test_rate_limit_honours_retry_after(llm: LlmActivities, fake: FakeLlmServer) -> None:
    fake.enqueue(rate_limited(retry_after=2))
    error = await failure(llm, req())
    assert error.type == ErrorType.PROVIDER_RATE_LIMITED
    assert not error.non_retryable
    assert error.next_retry_delay is not None
    assert error.next_retry_delay >= timedelta(seconds=2)
    assert fake.count() == 1


async def test_rate_limit_honours_retry_after_ms(llm: LlmActivities, fake: FakeLlmServer) -> None:
    fake.enqueue(rate_limited(retry_after=9, retry_after_ms=1500))
    error = await failure(llm, req("claude-haiku-4-5", "anthropic"))
    assert error.type == ErrorType.PROVIDER_RATE_LIMITED
    assert error.next_retry_delay == timedelta(milliseconds=1500)


def test_retry_after_http_date() -> None:
    delay = retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert delay == timedelta(0)
    assert retry_after({"retry-after": "soon"}) is None


async def test_server_error_is_retryable_with_jittered_backoff(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    fake.enqueue(server_error(500), server_error(503))
    first = await failure(llm, req(), attempt=1)
    assert first.type == ErrorType.PROVIDER_UNAVAILABLE
    assert not first.non_retryable
    assert first.next_retry_delay is not None
    assert timedelta(0) <= first.next_retry_delay <= timedelta(seconds=1)
    later = await failure(llm, req(), attempt=4)
    assert later.next_retry_delay is not None
    assert later.next_retry_delay <= timedelta(seconds=8)
    assert fake.count() == 2


async def test_anthropic_overloaded_is_retryable(llm: LlmActivities, fake: FakeLlmServer) -> None:
    fake.enqueue(overloaded_529())
    error = await failure(llm, req("claude-haiku-4-5", "anthropic"))
    assert error.type == ErrorType.PROVIDER_UNAVAILABLE
    assert not error.non_retryable
    assert fake.count(ANTHROPIC_PATH) == 1


@pytest.mark.parametrize(("code", "kind"), [
    (400, ErrorType.PROVIDER_BAD_REQUEST), (401, ErrorType.PROVIDER_AUTH),
    (403, ErrorType.PROVIDER_AUTH), (404, ErrorType.PROVIDER_NOT_FOUND),
    (422, ErrorType.PROVIDER_BAD_REQUEST),
])
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_client_errors_are_not_retryable(
    llm: LlmActivities, fake: FakeLlmServer, code: int, kind: ErrorType, provider: str
) -> None:
    fake.enqueue(status(code, "nope"))
    model = "gpt-4o-mini" if provider == "openai" else "claude-haiku-4-5"
    error = await failure(llm, req(model, provider))
    assert error.type == kind
    assert error.non_retryable
    assert error.next_retry_delay is None
    assert error.message.startswith(f"{provider} answered HTTP {code}: nope")
    assert "sk-test" not in error.message
    assert "sk-ant-test" not in error.message
    assert fake.count() == 1


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_malformed_json_is_retryable_bad_response(
    llm: LlmActivities, fake: FakeLlmServer, provider: str
) -> None:
    fake.enqueue(malformed_json())
    model = "gpt-4o-mini" if provider == "openai" else "claude-haiku-4-5"
    error = await failure(llm, req(model, provider))
    assert error.type == ErrorType.PROVIDER_BAD_RESPONSE
    assert not error.non_retryable
    assert fake.count() == 1


async def test_timeout_is_retryable(fake: FakeLlmServer, make_llm: MakeLlm) -> None:
    llm = make_llm(make_settings(fake, timeout=0.3))
    fake.enqueue(hang(1.0))
    error = await failure(llm, req())
    assert error.type == ErrorType.PROVIDER_TIMEOUT
    assert not error.non_retryable
    assert fake.count() == 1


async def test_connection_refused_is_retryable(fake: FakeLlmServer, make_llm: MakeLlm) -> None:
    settings = make_settings(fake)
    settings.llm.openai.base_url = "http://127.0.0.1:9/v1"
    error = await failure(make_llm(settings), req())
    assert error.type == ErrorType.PROVIDER_UNAVAILABLE
    assert not error.non_retryable


async def test_missing_key_names_the_variable(fake: FakeLlmServer, make_llm: MakeLlm) -> None:
    llm = make_llm(make_settings(fake, openai_key=None))
    error = await failure(llm, req())
    assert error.type == ErrorType.MISSING_CREDENTIALS
    assert error.non_retryable
    assert "OPENAI_API_KEY" in error.message
    assert "https://platform.openai.com/api-keys" in error.message
    assert fake.count() == 0


async def test_unknown_provider(llm: LlmActivities) -> None:
    error = await failure(llm, req(provider="nope"))
    assert error.type == ErrorType.UNKNOWN_PROVIDER
    assert error.non_retryable
    error = await failure(llm, req("mystery-model", provider=""))
    assert error.type == ErrorType.UNKNOWN_PROVIDER


async def test_compatible_server_with_unknown_price(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    result = await run(llm, req("llama3-local-unpriced", provider="local"))
    assert result.output.startswith("echo: ")
    assert result.cost is None
    assert result.warnings == ["no price known for local/llama3-local-unpriced; cost not counted"]
    assert fake.count(OPENAI_PATH) == 1
    assert "max_completion_tokens" not in fake.requests[0].body


async def test_model_prefix_selects_provider(llm: LlmActivities, fake: FakeLlmServer) -> None:
    result = await run(llm, req("anthropic/claude-haiku-4-5", provider=""))
    assert (result.provider, result.model) == ("anthropic", "claude-haiku-4-5")
    assert fake.count(ANTHROPIC_PATH) == 1


async def test_clients_are_reused(llm: LlmActivities, fake: FakeLlmServer) -> None:
    await run(llm, req())
    first = llm.provider("openai")
    await run(llm, req())
    assert llm.provider("openai") is first
    assert fake.count() == 2


async def test_offline_is_deterministic_free_and_schema_satisfying(
    llm: LlmActivities, fake: FakeLlmServer
) -> None:
    request = req("echo", "offline", output_schema=QUERY_SCHEMA)
    first, second = await run(llm, request), await run(llm, request)
    assert first.output == second.output
    assert "rss" in first.output["query"]
    assert "python" in first.output["query"]
    assert first.cost == 0.0
    assert first.tokens_in > 0
    assert first.tokens_out > 0
    text = await run(llm, req("echo", "offline"))
    assert text.output.startswith("[offline model echo] ")
    assert text.output == (await run(llm, req("echo", "offline"))).output
    assert fake.count() == 0


def test_offline_generator_satisfies_richer_schemas() -> None:
    from jsonschema import Draft202012Validator

    schema = {"type": "object", "required": ["items", "kind", "score", "n", "ok", "when"],
              "properties": {
                  "items": {"type": "array", "minItems": 2, "items": {
                      "type": "object", "properties": {"title": {"type": "string",
                                                                 "minLength": 3}}}},
                  "kind": {"enum": ["a", "b"]}, "score": {"type": "number", "minimum": 5},
                  "n": {"type": "integer", "maximum": 0}, "ok": {"type": "boolean"},
                  "when": {"type": "string", "format": "date"},
                  "maybe": {"type": ["null", "string"]},
              }}
    value = example_for_schema(schema, ["hello"])
    Draft202012Validator(schema).validate(value)
    assert value == example_for_schema(schema, ["hello"])


@pytest.mark.parametrize(("model", "provider", "expected"), [
    ("gpt-4o-mini", None, ("openai", "gpt-4o-mini")),
    ("o3-mini", None, ("openai", "o3-mini")),
    ("claude-haiku-4-5", None, ("anthropic", "claude-haiku-4-5")),
    ("ollama/llama3:8b", None, ("ollama", "llama3:8b")),
    ("offline/echo", None, ("offline", "echo")),
    ("meta-llama/Llama-3", "vllm", ("vllm", "meta-llama/Llama-3")),
    ("mystery", None, ("", "mystery")),
    ("gpt-4o", "", ("openai", "gpt-4o")),
])
def test_resolve_model(model: str, provider: str | None, expected: tuple[str, str]) -> None:
    assert resolve_model(model, provider) == expected


def test_known_providers_and_missing_credentials() -> None:
    settings = Settings(llm=LlmSettings(
        openai=OpenAISettings(api_key=None), anthropic=AnthropicSettings(api_key=SecretStr("k")),
        compatible={"vllm": CompatibleProvider(base_url="http://127.0.0.1:1/v1")},
    ))
    assert known_providers(settings) == {"openai", "anthropic", "offline", "vllm"}
    assert providers_missing_credentials(settings) == {"openai"}


def test_price_unknown_is_none_never_zero() -> None:
    assert price("offline", "echo", 10, 10, 0) == (0.0, [])
    cost, warnings = price("openai", "no-such-model-xyz", 10, 10, 0)
    assert cost is None
    assert warnings


async def test_feed_discovery_example_runs_offline(llm: LlmActivities) -> None:
    user = ("Generate a web search query for feeds about AI, machine learning that show "
            "thought leadership, contrarian views.")
    result = await run(llm, req("gpt-4o-mini", "offline", user=user, output_schema=QUERY_SCHEMA))
    assert set(result.output) == {"query"}
    assert "machine learning" in result.output["query"]


async def test_heartbeats_while_the_call_is_in_flight(
    llm: LlmActivities, fake: FakeLlmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("activities.llm.HEARTBEAT_SECONDS", 0.05)
    fake.enqueue(hang(0.4))
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    result: LlmResult = await env.run(llm.call, req())
    assert result.output.startswith("echo: ")
    assert len(beats) >= 3


def test_an_output_schema_checked_once_still_refuses_bad_answers_and_bad_schemas() -> None:
    from activities.providers.validation import validated_output

    schema = {"type": "object", "required": ["q"], "properties": {"q": {"type": "string"}}}
    assert validated_output('{"q": "a"}', schema) == {"q": "a"}
    for _ in range(2):  # the second time from the cached validator
        with pytest.raises(ApplicationError, match="does not match outputSchema"):
            validated_output('{"q": 1}', schema)
        with pytest.raises(ApplicationError, match="not a valid JSON Schema"):
            validated_output("{}", {"type": "no-such-type"})


async def test_a_compatible_server_that_cannot_stream_is_asked_for_whole_answers(
    fake: FakeLlmServer,
) -> None:
    fake.refuses_streams = True  # answers a streamed request 400, as some proxies do
    published: list[dict[str, Any]] = []

    async def publish(deltas: Sequence[dict[str, Any]]) -> None:
        published.extend(deltas)

    settings = make_settings(fake)
    settings.llm.compatible["plain"] = CompatibleProvider(base_url=fake.openai_base_url,
                                                          stream=False)
    llm = LlmActivities(settings, streams=Streams(publish, enabled=True, interval=0))
    try:
        fake.enqueue(ok("a whole answer", tokens_in=12, tokens_out=3))
        result = await run(llm, req("llama3-local-unpriced", provider="plain"))
        assert result.output == "a whole answer"
        assert (result.tokens_in, result.tokens_out) == (12, 3)
        assert "stream" not in fake.requests[0].body
        assert "stream_options" not in fake.requests[0].body
        assert published == []  # nothing streamed, so no deltas

        # The same server with streaming left on: refused, which is what the switch is for.
        error = await failure(llm, req("llama3-local-unpriced", provider="local"))
        assert error.type == ErrorType.PROVIDER_BAD_REQUEST
        assert "stream_options" in str(error)
        assert fake.requests[-1].body["stream"] is True
    finally:
        await llm.aclose()
