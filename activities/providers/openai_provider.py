"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, LM Studio) through ``AsyncOpenAI``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from activities.providers import errors
from activities.providers.completion import Completion
from activities.providers.registry import COMPATIBLE, register
from activities.streaming import TextSink
from promptpilot.settings import Settings
from schema.activities import LlmRequest


class OpenAIProvider:
    """Chat Completions on one ``AsyncOpenAI`` client, built once and reused."""

    def __init__(self, name: str, client: openai.AsyncOpenAI, *, modern: bool,
                 streams: bool = True) -> None:
        self.name = name
        self.client = client
        self.streams = streams
        """Whether the server takes streamed requests (a compatible server's ``stream``)."""
        # OpenAI itself wants max_completion_tokens; compatible servers widely know max_tokens.
        self._max_tokens_field = "max_completion_tokens" if modern else "max_tokens"

    def _params(self, request: LlmRequest, model: str) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": request.user})
        params: dict[str, Any] = {"model": model, "messages": messages}
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            params[self._max_tokens_field] = request.max_tokens
        if request.output_schema is not None:
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "output", "schema": request.output_schema, "strict": False}}
        return params

    async def complete(self, request: LlmRequest, model: str,
                       on_text: TextSink | None = None) -> Completion:
        """One chat completion, streamed when ``on_text`` is given; SDK errors become typed
        ``ApplicationError``s."""
        params = self._params(request, model)
        with errors.sdk_errors(self.name, openai):
            if on_text is None or not self.streams:
                return self._completion(await self.client.chat.completions.create(**params))
            streamed = await read_stream(self.name, await self.client.chat.completions.create(
                **params, **STREAM_PARAMS), on_text)
        return completion_of(streamed.text, streamed.usage)

    async def aclose(self) -> None:
        """Close the SDK client's connection pool."""
        await self.client.close()

    def _completion(self, response: Any) -> Completion:
        if not isinstance(response, ChatCompletion):
            raise errors.bad_response(self.name, "not a chat completion")
        try:
            text = response.choices[0].message.content or ""
            usage = response.usage
        except (AttributeError, IndexError, TypeError) as exc:
            raise errors.bad_response(self.name, "no choices in the completion") from exc
        return completion_of(text, usage)


STREAM_PARAMS: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
"""A streamed completion whose last chunk carries the usage."""


@dataclass
class StreamedCall:
    """A tool call put together from its streamed fragments."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass
class Streamed:
    """A streamed chat completion, put together: the text, tool calls and usage."""

    text: str = ""
    calls: dict[int, StreamedCall] = field(default_factory=dict)
    usage: CompletionUsage | None = None


async def read_stream(provider: str, stream: AsyncIterator[ChatCompletionChunk],
                      on_text: TextSink) -> Streamed:
    """Read a completion stream, passing each piece of text on as it comes; a stream that
    ends before the answer's ``finish_reason`` is a broken connection (retryable), not a
    short answer."""
    result, parts, finished = Streamed(), list[str](), False
    async for chunk in stream:
        if chunk.usage is not None:
            result.usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            finished = finished or choice.finish_reason is not None
            if choice.delta.content:
                parts.append(choice.delta.content)
                await on_text(choice.delta.content)
            for fragment in choice.delta.tool_calls or []:
                call = result.calls.setdefault(fragment.index, StreamedCall())
                call.id = fragment.id or call.id
                if fragment.function is not None:
                    call.name += fragment.function.name or ""
                    call.arguments += fragment.function.arguments or ""
    if not finished:
        raise errors.unreachable(provider, "the stream ended before the answer did")
    result.text = "".join(parts)
    return result


def completion_of(text: str, usage: CompletionUsage | None) -> Completion:
    """An answer's text with the token counts of its usage (none reported: zeros)."""
    if usage is None:
        return Completion(text=text)
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    return Completion(text=text, tokens_in=usage.prompt_tokens or 0,
                      tokens_out=usage.completion_tokens or 0, cached_tokens=cached)


def _client(api_key: str, base_url: str | None, settings: Settings) -> openai.AsyncOpenAI:
    # Temporal owns retries: with SDK retries off, every attempt is one request and one
    # visible attempt in the workflow's event history.
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0,
                              timeout=settings.llm.request_timeout_seconds)


@register("openai")
def build_openai(name: str, settings: Settings) -> OpenAIProvider:
    """OpenAI from ``settings.llm.openai`` (OPENAI_API_KEY, OPENAI_BASE_URL including /v1)."""
    section = settings.llm.openai
    if section.api_key is None or not section.api_key.get_secret_value():
        raise errors.missing_credentials(name)
    client = _client(section.api_key.get_secret_value(), section.base_url, settings)
    return OpenAIProvider(name, client, modern=True)


@register(COMPATIBLE)
def build_compatible(name: str, settings: Settings) -> OpenAIProvider:
    """A server from ``settings.llm.compatible[name]``; local servers often need no key."""
    section = settings.llm.compatible[name]
    key = section.api_key.get_secret_value() if section.api_key is not None else "unused"
    return OpenAIProvider(name, _client(key, section.base_url, settings), modern=False,
                          streams=section.stream)
