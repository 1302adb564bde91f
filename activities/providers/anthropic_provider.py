"""Anthropic through ``AsyncAnthropic`` Messages."""

from __future__ import annotations

import json
from typing import Any

import anthropic
from anthropic.types import Message

from activities.providers import errors
from activities.providers.completion import Completion
from activities.providers.registry import register
from activities.streaming import TextSink
from promptpilot.settings import Settings
from schema.activities import LlmRequest

DEFAULT_MAX_TOKENS = 4096
SCHEMA_INSTRUCTION = (
    "Reply with only a JSON value, no prose and no code fences, that matches this JSON Schema:\n"
)
"""Followed by the schema as JSON; the test fake reads the schema back from this marker."""


class AnthropicProvider:
    """Messages on one ``AsyncAnthropic`` client, built once and reused."""

    def __init__(self, name: str, client: anthropic.AsyncAnthropic) -> None:
        self.name = name
        self.client = client

    def _params(self, request: LlmRequest, model: str) -> dict[str, Any]:
        system = request.system or ""
        if request.output_schema is not None:
            instruction = SCHEMA_INSTRUCTION + json.dumps(request.output_schema)
            system = f"{system}\n\n{instruction}" if system else instruction
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": request.user}],
        }
        if system:
            params["system"] = system
        if request.temperature is not None:
            # This SDK version has no temperature argument; the Messages API still takes it.
            params["extra_body"] = {"temperature": request.temperature}
        return params

    async def complete(self, request: LlmRequest, model: str,
                       on_text: TextSink | None = None) -> Completion:
        """One message, streamed when ``on_text`` is given; SDK errors become typed
        ``ApplicationError``s."""
        params = self._params(request, model)
        with errors.sdk_errors(self.name, anthropic):
            if on_text is None:
                return self.completion(await self.client.messages.create(**params))
            return self.completion(await read_stream(self.name, self.client, params, on_text))

    async def aclose(self) -> None:
        """Close the SDK client's connection pool."""
        await self.client.close()

    def completion(self, response: Any) -> Completion:
        """A message's text and token counts (cache reads and writes in ``tokens_in``)."""
        if not isinstance(response, Message):
            raise errors.bad_response(self.name, "not a message")
        try:
            text = "".join(b.text for b in response.content if b.type == "text")
            usage = response.usage
            cached = usage.cache_read_input_tokens or 0
            written = usage.cache_creation_input_tokens or 0
            tokens_in = (usage.input_tokens or 0) + cached + written
            tokens_out = usage.output_tokens or 0
        except (AttributeError, TypeError) as exc:
            raise errors.bad_response(self.name, "no content or usage in the message") from exc
        # Anthropic counts cache reads/writes apart from input_tokens; ours includes them.
        return Completion(text=text, tokens_in=tokens_in, tokens_out=tokens_out,
                          cached_tokens=cached, cache_write_tokens=written)


async def read_stream(provider: str, client: anthropic.AsyncAnthropic, params: dict[str, Any],
                      on_text: TextSink) -> Message:
    """Stream a message, passing each piece of text on as it comes; the whole message. A
    stream that ends before its ``message_stop`` is a broken connection (retryable), not a
    short answer."""
    stopped = False
    async with client.messages.stream(**params) as stream:
        async for event in stream:
            if event.type == "text":
                await on_text(event.text)
            stopped = stopped or event.type == "message_stop"
        if not stopped:
            raise errors.unreachable(provider, "the stream ended before the answer did")
        return await stream.get_final_message()


@register("anthropic")
def build(name: str, settings: Settings) -> AnthropicProvider:
    """Anthropic from ``settings.llm.anthropic`` (ANTHROPIC_API_KEY, base URL without /v1)."""
    section = settings.llm.anthropic
    if section.api_key is None or not section.api_key.get_secret_value():
        raise errors.missing_credentials(name)
    # Temporal owns retries: one request per attempt, each visible in the event history.
    client = anthropic.AsyncAnthropic(
        api_key=section.api_key.get_secret_value(), base_url=section.base_url, max_retries=0,
        timeout=settings.llm.request_timeout_seconds,
    )
    return AnthropicProvider(name, client)
