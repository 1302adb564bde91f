"""A provider's limits around each model call: wait for an admission (declared rate limits,
calls in flight, a 429's pause that every run honours), fail fast while its circuit breaker is
open, and report back how the call went. The shared state is ``store.provider_gate``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.exceptions import ApplicationError

from promptpilot.llm_settings import LlmSettings
from schema.errors import ErrorType
from store.provider_gate import Admission, ProviderGate, Windows

# Waits are slept in short slices, heartbeating, so a cancel or a lost worker is seen.
_SLICE_SECONDS = 1.0
_BREAKER_TYPES = frozenset({ErrorType.PROVIDER_UNAVAILABLE, ErrorType.PROVIDER_TIMEOUT,
                            ErrorType.PROVIDER_BAD_RESPONSE})
_PAUSE_WITHOUT_RETRY_AFTER = timedelta(seconds=1)


@dataclass
class Queued:
    """How long the call waited for its admission, and for what."""

    seconds: float = 0.0
    reason: str = ""


# A provider without declared limits is only paused (429) or short-circuited (breaker): its
# shared state is read at most this often per worker instead of in a transaction per call.
# This worker's own 429s and failures take effect at once; another worker's within this.
STATE_SECONDS = 1.0


class ProviderLimiter:
    """Admits model calls through the shared gate; without one (unit tests) admits all."""

    def __init__(self, gate: ProviderGate | None, settings: LlmSettings) -> None:
        self.gate, self.settings = gate, settings
        # key -> (monotonic time read, the admission it gave) for providers without limits.
        self._clear: dict[str, tuple[float, Admission]] = {}

    def windows(self, provider: str) -> Windows:
        """The declared limits of ``provider`` (none declared: only pauses and breakers)."""
        limits = self.settings.limits.get(provider)
        margin = timedelta(seconds=self.settings.limit_margin_seconds)
        if limits is None:
            return Windows(margin=margin)
        return Windows(per_second=limits.requests_per_second,
                       per_minute=limits.requests_per_minute,
                       tokens_per_minute=limits.tokens_per_minute,
                       concurrent=limits.concurrent, margin=margin)

    @asynccontextmanager
    async def call(self, provider: str, tokens: int,
                   beat: Callable[[], None]) -> AsyncIterator[Queued]:
        """Hold an admission for one call to ``provider`` while the body makes it."""
        if self.gate is None:
            yield Queued()
            return
        key = f"{self.settings.limit_scope}:{provider}" if self.settings.limit_scope else provider
        queued, admission = await self._admission(provider, key, tokens, beat)
        try:
            yield queued
        except ApplicationError as exc:
            await self._failed(key, exc)
            raise
        else:
            if admission.failures:
                self._clear.pop(key, None)
                await self.gate.succeeded(key)
        finally:
            if admission.grant is not None:
                await self.gate.release(admission.grant)

    async def _admission(self, provider: str, key: str, tokens: int,
                         beat: Callable[[], None]) -> tuple[Queued, Admission]:
        assert self.gate is not None
        windows = self.windows(provider)
        started = time.monotonic()
        reason = ""
        while True:
            admission = await self._admit(key, tokens, windows)
            if admission.open_until is not None:
                raise short_circuited(provider, admission.open_until,
                                      self.settings.breaker_failures)
            if admission.wait is None:
                return Queued(seconds=time.monotonic() - started, reason=reason), admission
            reason = admission.reason
            beat()
            await asyncio.sleep(min(max(admission.wait.total_seconds(), 0.01), _SLICE_SECONDS))

    async def _admit(self, key: str, tokens: int, windows: Windows) -> Admission:
        assert self.gate is not None
        if windows.counted:
            return await self.gate.admit(key, tokens, windows)
        clear = self._clear.get(key)
        if clear is not None and time.monotonic() - clear[0] < STATE_SECONDS:
            return clear[1]
        admission = await self.gate.admit(key, tokens, windows)
        if admission.wait is None and admission.open_until is None:
            self._clear[key] = (time.monotonic(), admission)
        else:
            self._clear.pop(key, None)
        return admission

    async def _failed(self, key: str, exc: ApplicationError) -> None:
        assert self.gate is not None
        self._clear.pop(key, None)  # this worker's next call reads the state again
        if exc.type == ErrorType.PROVIDER_RATE_LIMITED:
            await self.gate.pause(key, exc.next_retry_delay or _PAUSE_WITHOUT_RETRY_AFTER)
        elif exc.type in _BREAKER_TYPES:
            await self.gate.failed(key, self.settings.breaker_failures,
                                   timedelta(seconds=self.settings.breaker_open_seconds))


def short_circuited(provider: str, until: datetime, failures: int) -> ApplicationError:
    """The call was not made: the provider failed ``failures`` times in a row."""
    left = max((until - datetime.now(UTC)).total_seconds(), 0.0)
    return ApplicationError(
        f"{provider} is short-circuited for another {left:.0f} s after {failures} failures in "
        "a row (circuit breaker); the call was not made and is retried after that",
        {"provider": provider, "openUntil": until.isoformat()},
        type=ErrorType.PROVIDER_SHORT_CIRCUITED, next_retry_delay=timedelta(seconds=left + 0.1))
