"""A provider without declared limits: its shared pause (a 429's Retry-After) is read at most
once a second per worker instead of in a transaction per call, and still holds for every
worker (README: Provider limits)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError

from activities.providers.limits import STATE_SECONDS, ProviderLimiter, Queued
from promptpilot.llm_settings import LlmSettings
from schema.errors import ErrorType
from store.provider_gate import ProviderGate


async def _call(limiter: ProviderLimiter, provider: str,
                fail: ApplicationError | None = None) -> Queued:
    async with limiter.call(provider, 10, lambda: None) as queued:
        if fail is not None:
            raise fail
    return queued


async def test_a_429_on_one_worker_pauses_it_at_once_and_the_others_within_a_second(
        engine: AsyncEngine) -> None:
    provider = f"unlimited-{uuid.uuid4().hex[:8]}"
    first, second = (ProviderLimiter(ProviderGate(engine), LlmSettings()) for _ in range(2))
    assert not (await _call(first, provider)).reason  # nothing declared, nothing paused
    assert not (await _call(second, provider)).reason
    limited = ApplicationError("429", type=ErrorType.PROVIDER_RATE_LIMITED,
                               next_retry_delay=timedelta(seconds=2.5))
    with pytest.raises(ApplicationError):
        await _call(second, provider, limited)

    async def later() -> Queued:
        await asyncio.sleep(STATE_SECONDS)
        return await _call(first, provider)

    own, other = await asyncio.gather(_call(second, provider), later())
    assert "429" in own.reason
    assert own.seconds > 1.5  # the pause's length: a lower bound, never flaky
    assert "429" in other.reason
