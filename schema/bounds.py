"""Ranges of the numbers requests carry into Postgres columns and Temporal, declared once.

A value past its column's range was refused by the driver (a 500, its traceback quoting the
statement's parameters); bounded here, it is a 422 naming the field, before anything runs.
"""

from __future__ import annotations

from typing import Annotated

from annotated_types import Ge, Le

INT32_MAX = 2**31 - 1
"""The largest value of a Postgres INTEGER column."""

VersionNumber = Annotated[int, Ge(1), Le(INT32_MAX)]
"""A workflow or prompt version number: an INTEGER column, counted from 1."""

MAX_SCHEDULE_SECONDS = 10 * 366 * 86400
"""The longest interval, offset, jitter or catch-up window of a schedule (ten years): Temporal
keeps durations in int64 nanoseconds and Python's timedelta stops at 10^9 days."""

ScheduleSeconds = Annotated[float, Ge(0), Le(MAX_SCHEDULE_SECONDS)]
"""A schedule duration in seconds."""
