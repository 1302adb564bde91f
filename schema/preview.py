"""Bodies of the preview API: requests and `WorkflowPreviewResult`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schema.base import CamelModel, RequestBody
from schema.run import LlmCacheMode, RunStatus, StepError, StepWork


class PreviewRequest(RequestBody):
    """Body of `POST /api/workflows/{slug}/preview`: explicit input wins over sample values."""

    input: dict[str, Any] | None = None
    use_sample_data: bool = False
    timeout_seconds: float = Field(default=60, ge=1, le=300)
    max_cost_usd: float | None = Field(default=None, gt=0)
    """The preview's budget (over the definition's ``maxCostUsd``): calls that could pass it
    are not made."""
    allow_side_effects: bool = False
    """A preview does not send http_request writes (POST, PUT, PATCH, DELETE): they are
    recorded ``skipped``. True sends them."""
    llm_cache: LlmCacheMode | None = None
    """``use`` (the default for previews): a model call identical to a recorded one is
    answered from the record, cost 0; ``off``: always call."""


class DefinitionPreviewRequest(PreviewRequest):
    """Body of `POST /api/workflows/preview`: an unsaved definition to dry-run."""

    definition: dict[str, Any]


class PreviewStep(StepWork):
    """One step of a preview, with its timing; inputs and outputs are clones. Its work fields
    (tokens, cost, model outputs, aggregate tokens, attempt log...) are a run step's."""

    step_id: str
    step_index: int
    name: str | None = None
    type: str
    status: str
    input: Any = None
    output: Any = None
    error: StepError | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None


class StepEstimate(CamelModel):
    """One llm step's share of a pre-call estimate (``calls``: its model calls, map items and
    parallel models counted)."""

    step_id: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    """None when a model has no known price."""


class PreCallEstimate(CamelModel):
    """What the preview's model calls could cost at most, made before any call; ``basis``
    says what it rests on."""

    basis: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    steps: list[StepEstimate] = Field(default_factory=list)


class TokenEstimates(CamelModel):
    """Token and cost totals the preview's calls reported (what a real run would spend, as
    priced), and ``beforeCall``: the estimate made before any call."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    estimated_cost: float | None = None
    before_call: PreCallEstimate | None = None


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
