"""The ``llm_call`` activity: one model call through a registered provider, priced and checked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity

from activities.pricing import price
from activities.providers import errors, registry
from activities.providers.completion import Provider
from activities.providers.validation import validated_output
from promptpilot.settings import Settings
from schema.activities import LlmRequest, LlmResult

HEARTBEAT_SECONDS = 2.0
T = TypeVar("T")


async def _heartbeating(call: Awaitable[T]) -> T:
    """Await ``call`` while heartbeating, so a lost worker shows within the heartbeat timeout."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(HEARTBEAT_SECONDS)

    beating = asyncio.create_task(beat())
    try:
        return await call
    finally:
        beating.cancel()


class LlmActivities:
    """LLM activities; SDK clients are built on first use, one per provider, then reused."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._providers: dict[str, Provider] = {}
        registry.load_builtin()

    def provider(self, name: str) -> Provider:
        """The provider called ``name``, built on first use."""
        if name not in self._providers:
            factory = registry.factory_for(name, self.settings)
            if factory is None:
                raise errors.unknown_provider(name, registry.known_providers(self.settings))
            self._providers[name] = factory(name, self.settings)
        return self._providers[name]

    async def aclose(self) -> None:
        """Close every SDK client built so far (call on worker shutdown)."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()

    @activity.defn(name="llm_call")
    async def call(self, request: LlmRequest) -> LlmResult:
        """Call the model, validate the answer against ``outputSchema`` and price it."""
        provider_name, model = registry.resolve_model(request.model, request.provider or None)
        if not provider_name:
            known = registry.known_providers(self.settings)
            raise errors.unknown_provider("", known, request.model)
        provider = self.provider(provider_name)
        started = time.monotonic()
        completion = await _heartbeating(provider.complete(request, model))
        latency_ms = (time.monotonic() - started) * 1000
        attempt = activity.info().attempt
        activity.logger.info(
            "llm step %s: %s/%s answered in %.0f ms, tokens in=%d out=%d cached=%d (attempt %d)",
            request.step_id, provider_name, model, latency_ms, completion.tokens_in,
            completion.tokens_out, completion.cached_tokens, attempt,
        )
        output = (
            validated_output(completion.text, request.output_schema)
            if request.output_schema is not None else completion.text
        )
        cost, warnings = price(provider_name, model, completion.tokens_in,
                               completion.tokens_out, completion.cached_tokens)
        for warning in warnings:
            activity.logger.warning("llm step %s: %s", request.step_id, warning)
        return LlmResult(
            output=output, text=completion.text, provider=provider_name, model=model,
            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out,
            cached_tokens=completion.cached_tokens, cost=cost, latency_ms=latency_ms,
            attempt=attempt, warnings=warnings,
        )
