"""What a finished step contributes to its record and the run totals. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schema.run import StepError


@dataclass
class StepOutcome:
    """What a finished (or failed, for its partial spend) step contributes to its record."""

    output: Any
    attempts: int = 1
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    model: str | None = None
    provider: str | None = None
    rendered: dict[str, Any] | None = None
    tool_trace: list[dict[str, Any]] | None = None
    warnings: list[str] = field(default_factory=list)
    attempt_log: list[dict[str, Any]] | None = None
    repairs: list[dict[str, Any]] | None = None
    model_outputs: list[dict[str, Any]] | None = None
    aggregate_tokens: dict[str, Any] | None = None
    map_items: dict[str, Any] | None = None
    jump: str | None = None
    """A condition's chosen target: the steps before it are skipped."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    """When the activity itself says the work ran (local activities: ``workflow.now()``
    stands still while a chain of them runs in one workflow task)."""
    mirrored: bool = False
    """The activity already wrote the step's finished record into the mirror."""
    rolls_up: bool = False
    """The cost is the sum of work recorded elsewhere (map items, a child run): add it to the
    run's total even when unknown (None)."""


class OutcomeFailed(Exception):
    """A step kind failed; ``partial`` (when given) is still recorded on the step."""

    def __init__(self, error: StepError, partial: StepOutcome | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.partial = partial
