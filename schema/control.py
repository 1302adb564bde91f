"""Payloads of the control-flow step kinds: approval decisions and map batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schema.base import CamelModel
from schema.definition import Step
from schema.run import ChildDefinition, LlmCacheMode, RunLimits, StepError
from schema.usage import ModelSpend

APPROVAL_UPDATE = "decide"


class ApprovalDecision(CamelModel):
    """A person's answer to an approval step, sent as the interpreter's `decide` update."""

    step_id: str
    decision: Literal["approved", "rejected"]
    comment: str | None = Field(default=None, max_length=4000)
    by: dict[str, Any] | None = None
    """Who decided: the API key's id and name."""
    at: datetime | None = None


class MapItem(CamelModel):
    """One item of a map step and its position in the list."""

    index: int
    value: Any = None


class MapBatchInput(CamelModel):
    """A batch of map items, run by one child workflow over the map's sub-steps."""

    run_id: str
    environment: str
    step_id: str
    steps: list[Step]
    workflow_slug: str | None = None
    """The run's workflow: its daily spend limit counts the items' calls too."""
    llm_cache: LlmCacheMode = "off"
    side_effects: bool = True
    shared: dict[str, Any] = Field(default_factory=dict)
    items: list[MapItem]
    concurrency: int = 10
    mirror: bool = True
    max_cost_usd: float | None = None
    children: list[ChildDefinition] = Field(default_factory=list)
    limits: RunLimits = Field(default_factory=RunLimits)
    """The parent run's limits."""


class MapItemResult(CamelModel):
    """What one item's sub-sequence produced: the output of its last step that ran."""

    index: int
    status: Literal["completed", "failed"]
    output: Any = None
    error: StepError | None = None
    failed_step_id: str | None = None
    cost: float | None = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    spend: dict[str, ModelSpend] = Field(default_factory=dict)
    """The item's model calls by ``provider/model`` (nested maps included, child runs not:
    those are runs of their own)."""


class MapBatchResult(CamelModel):
    """Every item of a batch, in the batch's order."""

    items: list[MapItemResult]
