"""Bodies of the HTTP API: requests and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from schema.base import CamelModel, RequestBody
from schema.problems import Problem
from schema.run import LlmCacheMode, StepWork


class RunOptions(RequestBody):
    """How a run is started: its place in its task queue (schema.run_priority), and whether
    its model calls may be answered from recorded ones."""

    priority: int | None = Field(default=None, ge=1, le=5)
    """Temporal task priority: 1 runs first, 5 last; default 3 (scheduled runs: 4)."""
    fairness_key: str | None = Field(default=None, min_length=1, max_length=64)
    """Runs of different keys take turns within a priority; default: the workflow's slug."""
    llm_cache: LlmCacheMode | None = None
    """``use``: a model call identical to a recorded one is answered from the record (no call,
    cost 0); ``off``: always call. Default: the environment's (runs: off)."""


class RunRequest(RunOptions):
    """Body of `POST /api/workflows/{slug}/run`: input, and a rerun's source and step."""

    input: dict[str, Any] = Field(default_factory=dict)
    from_step_id: str | None = None
    source_run_id: str | None = None
    step_overrides: dict[str, dict[str, Any]] | None = None
    pin_version: bool = False
    max_cost_usd: float | None = Field(default=None, gt=0)


class ExecuteWorkflowRequest(RunOptions):
    """Body of `POST /api/workflows/{slug}/execute`: the run's input, checked against the
    workflow's variables, an optional budget, priority and fairness key."""

    input: dict[str, Any] = Field(default_factory=dict)
    max_cost_usd: float | None = Field(default=None, gt=0)


class RerunRequest(RunOptions):
    """Body of `POST /api/workflows/runs/{runId}/rerun`: input defaults to the source's."""

    from_step_id: str
    input: dict[str, Any] | None = None
    step_overrides: dict[str, dict[str, Any]] | None = None
    pin_version: bool = False
    max_cost_usd: float | None = Field(default=None, gt=0)


class StepPublic(StepWork):
    """One step of a run as the API shows it: its work (``StepWork``), row ids and times."""

    id: str
    step_id: str
    step_index: int
    name: str | None = None
    type: str
    status: str
    input_json: Any = None
    output_json: Any = None
    error: dict[str, Any] | None = None
    retry_count: int = 0
    warnings: list[str] | None = None  # type: ignore[assignment]  # a row may hold none
    reused_from_step_record_id: str | None = None
    parent_step_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None


class RunPublic(CamelModel):
    """A run: its status, input and output, lineage and totals."""

    id: str
    workflow_id: str
    workflow_slug: str | None = None
    workflow_version: int
    status: str
    trigger: str
    input_json: Any = None
    output_json: Any = None
    error: dict[str, Any] | None = None
    actual_cost: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    source_run_id: str | None = None
    from_step_id: str | None = None
    overrides: dict[str, Any] | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    trace_id: str | None = None
    """The run's OpenTelemetry trace id (hex) when tracing was on (README: Traces)."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime
    steps: list[StepPublic] | None = None


class RunEnvelope(CamelModel):
    """`{"success": true, "run": {...}}`."""

    success: bool = True
    run: RunPublic


class RunListEnvelope(CamelModel):
    """A page of runs; `nextCursor` fetches the next page."""

    success: bool = True
    runs: list[RunPublic]
    next_cursor: str | None = None


class WorkflowPublic(CamelModel):
    """A stored workflow with its current definition."""

    id: str
    slug: str
    name: str
    description: str | None = None
    current_version: int
    created_at: datetime
    updated_at: datetime
    definition: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)


class WorkflowEnvelope(CamelModel):
    """`{"success": true, "workflow": {...}}`."""

    success: bool = True
    workflow: WorkflowPublic


class WorkflowListEnvelope(CamelModel):
    """All workflows of the caller's environment."""

    success: bool = True
    workflows: list[WorkflowPublic]


class VersionPublic(CamelModel):
    """One immutable definition version."""

    version: int
    created_at: datetime
    definition: dict[str, Any]


class VersionSummary(CamelModel):
    """A version in a list: its definition is at ``/versions/{version}``."""

    version: int
    created_at: datetime


class VersionListEnvelope(CamelModel):
    """The versions of a workflow, oldest first (without their definitions)."""

    success: bool = True
    versions: list[VersionSummary]


class VersionEnvelope(CamelModel):
    """One version of a workflow."""

    success: bool = True
    version: VersionPublic


class DefinitionChange(CamelModel):
    """One change between two versions, jsonpatch-style, located in the `to` version."""

    op: str
    path: str
    step_id: str | None = None
    old: Any = None
    new: Any = None


class StepChanges(CamelModel):
    """Steps matched by id: which were added, removed, changed, or moved."""

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)
    moved: list[str] = Field(default_factory=list)


class VersionDiffEnvelope(CamelModel):
    """What changed from one version to another."""

    success: bool = True
    from_version: int
    to_version: int
    steps: StepChanges
    changes: list[DefinitionChange]


class ErrorBody(CamelModel):
    """What went wrong and where."""

    code: str
    message: str
    problems: list[Problem] = Field(default_factory=list)


class ErrorEnvelope(CamelModel):
    """Every 4xx/5xx body: `{"success": false, "error": {...}}`."""

    success: bool = False
    error: ErrorBody
