"""The attemptLog of an llm call, carried from attempt to attempt in heartbeat details.

Temporal shows an activity only its own attempt number, not how earlier attempts failed. The
last heartbeat details of an attempt, though, are handed to the next attempt (also after a
failure: the final heartbeat is flushed with it). So every attempt heartbeats the log so far,
appends its own entry before it raises, and the log reaches the interpreter either in the
successful ``LlmResult`` or in the final failure's details, with nothing to store elsewhere.
An attempt that left no entry (a lost worker, a timeout) shows as ``attempt_lost``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from schema.activities import AttemptEntry

LOST = "attempt_lost"


def now() -> datetime:
    """Timezone-aware now for log timestamps."""
    return datetime.now(UTC)


def prior_attempts(details: Sequence[Any], attempt: int) -> list[AttemptEntry]:
    """Entries of attempts before ``attempt``, from heartbeat details, gaps filled."""
    entries: list[AttemptEntry] = []
    raw = details[0] if details else []
    for item in raw if isinstance(raw, list) else []:
        try:
            entry = AttemptEntry.model_validate(item)
        except ValidationError:
            continue
        if entry.number < attempt:
            entries.append(entry)
    known = {e.number for e in entries}
    for number in range(1, attempt):
        if number not in known:
            entries.append(AttemptEntry(
                number=number, status="failed", error_type=LOST,
                message="the attempt ended without reporting (worker lost or timed out)"))
    return sorted(entries, key=lambda e: e.number)


def dump(entries: Sequence[AttemptEntry]) -> list[dict[str, Any]]:
    """Entries as JSON-ready dicts (what heartbeats and error details carry)."""
    return [e.model_dump(mode="json") for e in entries]


def failed_entry(error: ApplicationError, number: int, model: str,
                 started: datetime, cost_usd: float | None = None) -> AttemptEntry:
    """The log entry of an attempt that raised ``error`` after spending ``cost_usd``."""
    delay = error.next_retry_delay.total_seconds() if error.next_retry_delay else None
    return AttemptEntry(number=number, status="failed", model=model, error_type=error.type,
                        message=error.message, retryable=not error.non_retryable,
                        retry_delay_seconds=None if error.non_retryable else delay,
                        started_at=started, finished_at=now(), cost_usd=cost_usd)


def with_log(error: ApplicationError, number: int, log: Sequence[AttemptEntry],
             extra: dict[str, Any]) -> ApplicationError:
    """``error`` again, its details extended with the attempt number, the log and ``extra``."""
    details: dict[str, Any] = {}
    if error.details and isinstance(error.details[0], dict):
        details.update(error.details[0])
    details.update(extra, attempt=number, attemptLog=dump(log))
    activity.heartbeat(dump(log))
    return ApplicationError(error.message, details, type=error.type,
                            non_retryable=error.non_retryable,
                            next_retry_delay=error.next_retry_delay)
