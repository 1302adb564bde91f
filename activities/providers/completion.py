"""The provider interface: one request in, one ``Completion`` out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from activities.streaming import TextSink
from schema.activities import LlmRequest


@dataclass(frozen=True)
class Completion:
    """A provider's raw answer; ``tokens_in`` includes ``cached_tokens`` (cache reads) and
    ``cache_write_tokens`` (prompt written to the provider's cache, priced apart)."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class Provider(Protocol):
    """Something that can answer an ``LlmRequest`` for a given model name."""

    async def complete(self, request: LlmRequest, model: str,
                       on_text: TextSink | None = None) -> Completion:
        """Send one request (no SDK retries) and return the answer; with ``on_text``, stream
        it, calling ``on_text`` with each piece of text as it comes."""
        ...

    async def aclose(self) -> None:
        """Release the provider's HTTP connections."""
        ...
