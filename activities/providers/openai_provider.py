"""OpenAI and every OpenAI-compatible server (vLLM, Ollama, LM Studio) through ``AsyncOpenAI``."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion

from activities.providers import errors
from activities.providers.completion import Completion
from activities.providers.registry import COMPATIBLE, register
from promptpilot.settings import Settings
from schema.activities import LlmRequest


class OpenAIProvider:
    """Chat Completions on one ``AsyncOpenAI`` client, built once and reused."""

    def __init__(self, name: str, client: openai.AsyncOpenAI, *, modern: bool) -> None:
        self.name = name
        self.client = client
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

    async def complete(self, request: LlmRequest, model: str) -> Completion:
        """One chat completion; SDK errors become typed ``ApplicationError``s."""
        with errors.sdk_errors(self.name, openai):
            response = await self.client.chat.completions.create(**self._params(request, model))
        return self._completion(response)

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
    return OpenAIProvider(name, _client(key, section.base_url, settings), modern=False)
