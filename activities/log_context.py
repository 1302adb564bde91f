"""Which run and step the code running now works for, so every log line can say (the JSON
log format carries them): set by the activities around their work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_CURRENT: ContextVar[tuple[str, str | None, str | None] | None] = ContextVar(
    "promptpilot_step", default=None)


@contextmanager
def working_on(run_id: str, step_id: str | None = None,
               environment: str | None = None) -> Iterator[None]:
    """Log lines within the block name this run, step and environment."""
    token = _CURRENT.set((run_id, step_id, environment))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current() -> tuple[str, str | None, str | None] | None:
    """(run id, step id, environment) of the work in progress, or None."""
    return _CURRENT.get()
