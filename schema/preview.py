"""Bodies of the preview API: requests and `WorkflowPreviewResult`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schema.base import CamelModel, RequestBody
from schema.run import RunStatus, StepError


class PreviewRequest(RequestBody):
    """Body of `POST /api/workflows/{slug}/preview`: explicit input wins over sample values."""

    input: dict[str, Any] | None = None
    use_sample_data: bool = False
    timeout_seconds: float = Field(default=60, ge=1, le=300)


class DefinitionPreviewRequest(PreviewRequest):
    """Body of `POST /api/workflows/preview`: an unsaved definition to dry-run."""

    definition: dict[str, Any]


class PreviewStep(CamelModel):
    """One step of a preview, with its timing; inputs and outputs are clones."""

    step_id: str
    step_index: int
    name: str | None = None
    type: str
    status: str
    input: Any = None
    output: Any = None
    rendered: dict[str, Any] | None = None
    error: StepError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    model: str | None = None
    provider: str | None = None
    warnings: list[str] = Field(default_factory=list)


class TokenEstimates(CamelModel):
    """Token and cost totals of the preview (what a real run would spend, as priced)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    estimated_cost: float | None = None


class WorkflowPreviewResult(CamelModel):
    """A preview's result: status, per-step timing, warnings, tokens, final output."""

    preview_id: str
    workflow_id: str
    workflow_version: int | None = None
    status: RunStatus
    input: dict[str, Any]
    used_sample_data: bool = False
    output: Any = None
    error: StepError | None = None
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    steps: list[PreviewStep]
    warnings: list[str] = Field(default_factory=list)
    token_estimates: TokenEstimates


class PreviewEnvelope(CamelModel):
    """`{"success": true, "preview": {...}}`."""

    success: bool = True
    preview: WorkflowPreviewResult
