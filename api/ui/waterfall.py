"""A run's steps as a time-scaled waterfall: one bar per started step, placed by its start and
end relative to the run's start (percentages of the run's span, drawn as SVG by run.html)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from schema.api import StepPublic
from store.columns import utcnow


@dataclass(frozen=True)
class Bar:
    """One step's bar: left edge and width in % of the run's span, and what it stands for."""

    step_id: str
    label: str
    status: str
    left: float
    width: float
    start_ms: float
    end_ms: float
    running: bool


@dataclass(frozen=True)
class Waterfall:
    """The bars in start order and the span they share (ms)."""

    bars: list[Bar]
    span_ms: float


def waterfall(run_started: datetime | None, run_finished: datetime | None,
              steps: Sequence[StepPublic]) -> Waterfall:
    """Bars for the steps that started; a step still going ends at now (as does the span)."""
    started = [s for s in steps if s.started_at is not None]
    if not started:
        return Waterfall(bars=[], span_ms=0.0)
    now = utcnow()
    origin = min(s.started_at for s in started if s.started_at is not None)
    origin = min(origin, run_started) if run_started else origin
    ends = [s.finished_at or now for s in started]
    end = max([run_finished or now, *ends])
    span = max((end - origin).total_seconds() * 1000, 1.0)
    bars = []
    for step, finish in sorted(zip(started, ends, strict=True),
                               key=lambda pair: (pair[0].started_at, pair[0].step_index)):
        assert step.started_at is not None
        start_ms = (step.started_at - origin).total_seconds() * 1000
        end_ms = max((finish - origin).total_seconds() * 1000, start_ms)
        # A bar is at least 0.5% wide so an instant step is still visible and clickable.
        width = max((end_ms - start_ms) / span * 100, 0.5)
        left = min(start_ms / span * 100, 100 - width)
        bars.append(Bar(step_id=step.step_id, label=step.name or step.step_id,
                        status=step.status, left=round(left, 3), width=round(width, 3),
                        start_ms=start_ms, end_ms=end_ms, running=step.finished_at is None))
    return Waterfall(bars=bars, span_ms=span)
