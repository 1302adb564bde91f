"""Body of `GET /api/workflows/runs/{runId}/diff?against={otherRunId}`: two runs compared step
by step (steps matched by id), the ``run`` side against the ``against`` side."""

from __future__ import annotations

from pydantic import Field

from schema.api import DefinitionChange
from schema.base import CamelModel


class StepDiff(CamelModel):
    """One step on both sides: statuses, the rendered prompt as a unified diff, the output as
    JSON-pointer changes, and the run side's tokens, cost and latency minus the other's."""

    step_id: str
    status: str | None
    """The step's status in the run (None: the run has no such step)."""
    against_status: str | None
    prompt_diff: str | None = None
    """Unified diff of the rendered system and user prompts (None: the same, or no prompt)."""
    output_changes: list[DefinitionChange] = Field(default_factory=list)
    tokens_in_delta: int = 0
    tokens_out_delta: int = 0
    cost_delta: float | None = 0.0
    """None when either side's cost is unknown (an unpriced model)."""
    latency_ms_delta: float | None = None
    changed: bool = False
    """Whether anything above differs."""


class RunDiff(CamelModel):
    """Two runs compared; ``changedSteps`` lists the steps that differ, in the run's order."""

    run_id: str
    against_run_id: str
    steps: list[StepDiff]
    changed_steps: list[str] = Field(default_factory=list)
    cost_delta: float | None = 0.0
    tokens_in_delta: int = 0
    tokens_out_delta: int = 0


class RunDiffEnvelope(CamelModel):
    """`{"success": true, "diff": {...}}`."""

    success: bool = True
    diff: RunDiff
