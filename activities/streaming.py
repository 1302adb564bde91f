"""A step's text as its provider streams it, batched into deltas for the run's subscribers.

The provider calls ``write`` with each piece of text as it arrives. The first piece goes out
at once; later ones are held for at most ``interval`` seconds and sent together (one NOTIFY
per batch, however fast the tokens come), and ``close`` sends what is left before the
activity returns, so every delta of a step reaches the channel before the step's own
transition does. A delta that cannot be sent is dropped with a warning: the stream is a
view of the step's output, which is recorded whatever happens here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger("activities.streaming")

Publish = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
TextSink = Callable[[str], Awaitable[None]]
"""What a provider calls with each piece of streamed text."""

CHUNK_CHARS = 1500
"""A delta's text at most: within Postgres's 8,000-byte NOTIFY payload in any encoding."""
PUBLISH_TIMEOUT_SECONDS = 2.0


class TextStream:
    """One provider call's text, sent as ``{"kind": "delta", **head, "seq", "text"}``."""

    def __init__(self, publish: Publish, head: dict[str, Any], interval: float) -> None:
        self._publish, self._head, self._interval = publish, head, interval
        self._pending: list[str] = []
        self._size = 0
        self._sent_at = float("-inf")
        self._seq = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._broken = False

    async def write(self, text: str) -> None:
        """Take a piece of text; sent now when the last batch went out ``interval`` ago."""
        if not text or self._broken:
            return
        self._pending.append(text)
        self._size += len(text)
        wait = self._sent_at + self._interval - time.monotonic()
        if wait <= 0 or self._size >= CHUNK_CHARS:
            await self._flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later(wait))

    async def close(self) -> None:
        """Send whatever is held: call once the provider's answer is complete."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        await self._flush()

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None
        await self._flush()

    async def _flush(self) -> None:
        async with self._lock:
            if not self._pending or self._broken:
                return
            text = "".join(self._pending)
            self._pending.clear()
            self._size = 0
            deltas = []
            for start in range(0, len(text), CHUNK_CHARS):
                self._seq += 1
                deltas.append({"kind": "delta", **self._head, "seq": self._seq,
                               "text": text[start:start + CHUNK_CHARS]})
            self._sent_at = time.monotonic()
            try:
                await asyncio.wait_for(self._publish(deltas), PUBLISH_TIMEOUT_SECONDS)
            except Exception as exc:  # a view, never the record: the step goes on
                self._broken = True
                log.warning("step %s: live text not sent (%s); the step's output is "
                            "recorded as usual", self._head.get("stepId"), type(exc).__name__)


class Streams:
    """Makes a ``TextStream`` per provider call, or none when streaming is off."""

    def __init__(self, publish: Publish | None, *, enabled: bool, interval: float) -> None:
        self._publish = publish if enabled else None
        self._interval = interval

    def open(self, run_id: str, step_id: str, attempt: int,
             **extra: int) -> TextStream | None:
        """A stream for one call of ``step_id``; ``extra`` (``repair``, ``turn``) tells the
        calls of one step apart, and a subscriber starts the step's text over when they or
        ``attempt`` change."""
        if self._publish is None:
            return None
        head = {"runId": run_id, "stepId": step_id, "attempt": attempt, **extra}
        return TextStream(self._publish, head, self._interval)
