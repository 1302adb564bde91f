"""What a finished step contributes to its record and the run totals. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
