"""Ranges of the numbers requests carry into Postgres columns and Temporal, declared once.

A value past its column's range was refused by the driver (a 500, its traceback quoting the
statement's parameters); bounded here, it is a 422 naming the field, before anything runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import AfterValidator, BeforeValidator, Strict

INT32_MAX = 2**31 - 1
"""The largest value of a Postgres INTEGER column."""

VersionNumber = Annotated[int, Ge(1), Le(INT32_MAX)]
"""A workflow or prompt version number: an INTEGER column, counted from 1."""

MAX_SCHEDULE_SECONDS = 10 * 366 * 86400
"""The longest interval, offset, jitter or catch-up window of a schedule (ten years): Temporal
keeps durations in int64 nanoseconds and Python's timedelta stops at 10^9 days."""

ScheduleSeconds = Annotated[float, Ge(0), Le(MAX_SCHEDULE_SECONDS)]
"""A schedule duration in seconds."""


def _text(value: Any) -> Any:
    # Pydantic reads a number (or a numeric string, "1e-33" too) as seconds since 1970: not a
    # time here. Any text Python reads as a float is a number; no ISO 8601 time is.
    numeric = isinstance(value, int | float)
    if isinstance(value, str):
        try:
            float(value)
            numeric = True
        except ValueError:
            pass
    if numeric:
        raise ValueError("a time is ISO 8601 text (2026-01-31T09:00:00Z), not a number")
    return value


def _in_utc(value: datetime) -> datetime:
    # 0001-01-01T00:00:00+14:00 is a valid datetime that no UTC column can hold.
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("the time is outside the years 1-9999 in UTC") from None
    return value


IsoDateTime = Annotated[datetime, Strict(False), BeforeValidator(_text), AfterValidator(_in_utc)]
"""A time in a body or a query: ISO 8601 text, within the years 1-9999 in UTC."""
