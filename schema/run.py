"""Payloads of the interpreter workflow: its input, live progress, step records and result."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schema.base import CamelModel
from schema.definition import WorkflowDefinition

RunStatus = Literal["pending", "running", "stalled", "completed", "failed", "cancelled"]
"""``stalled``: Temporal keeps retrying the run's workflow task (a bad deploy); not final."""
StepStatus = Literal["pending", "running", "waiting", "completed", "failed", "cancelled", "reused",
                     "skipped"]
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

LlmCacheMode = Literal["use", "off"]
"""Whether model calls may be answered from recorded ones (README: Recorded model answers)."""


class StepError(CamelModel):
    """Why a step failed, as stored in the mirror and returned by the API."""

    type: str
    message: str
    retryable: bool = False
    details: dict[str, Any] | None = None


class SeedStep(CamelModel):
    """A prior step's recorded result, carried into a rerun so it is not called again."""

    step_id: str
    source_record_id: str
    input: Any = None
    output: Any = None
    status: Literal["completed", "skipped"] = "completed"
    failed_items: list[int] | None = None
    """Map steps only: item indexes whose recorded output is not reusable."""


class ChildDefinition(CamelModel):
    """A workflow a `workflow` step runs, resolved when the parent run started."""

    slug: str
    requested_version: int | None = None
    version: int
    workflow_id: str
    definition: WorkflowDefinition


class RunLimits(CamelModel):
    """The run-time limits a run was started with (from ``Settings.limits``), carried in its
    input so every replay and every child run applies the same ones."""

    template_max_output_chars: int = 8_000_000
    template_max_operations: int = 100_000
    max_step_output_bytes: int = 8 * 1024 * 1024
    max_payload_bytes: int = 1_900_000
    """The worker's payload guard (``Settings.max_payload_bytes``): the run's result is checked
    against it before the run is recorded ``completed``."""


class RunWorkflowInput(CamelModel):
    """Everything the interpreter needs; the definition snapshot travels with it."""

    run_id: str
    environment: str
    workflow_id: str
    workflow_slug: str
    workflow_version: int
    definition: WorkflowDefinition
    input: dict[str, Any] = Field(default_factory=dict)
    trigger: str = "api"
    trigger_id: str | None = None
    from_step_id: str | None = None
    source_run_id: str | None = None
    seed_steps: list[SeedStep] = Field(default_factory=list)
    mirror: bool = True
    max_cost_usd: float | None = None
    partial_seeds: list[SeedStep] = Field(default_factory=list)
    """Steps at or after `fromStepId` with reusable parts (a map's completed items)."""
    children: list[ChildDefinition] = Field(default_factory=list)
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    limits: RunLimits = Field(default_factory=RunLimits)
    priority: int | None = Field(default=None, ge=1, le=5)
    """Temporal task priority, 1 (first) to 5; None: 3, or what a parent run has."""
    llm_cache: LlmCacheMode = "off"
    """``use``: a model call identical to a recorded one is answered from the record."""
    side_effects: bool = True
    """False (a preview's default): http_request writes are recorded ``skipped``, not sent."""
    fairness_key: str | None = Field(default=None, max_length=64)
    """Runs are dispatched fairly across these keys; None: the workflow's slug."""


class StepWork(CamelModel):
    """What a step's work contributes to its record: the one definition of these fields, from
    which the payload record (``StepRecord``), the public view (``schema.api.StepPublic``),
    the workflow's outcome (``workflows.outcome.StepOutcome``) and the mirror row's values
    (the upsert, over the ``StepRow`` columns of the same names) derive."""

    rendered: dict[str, Any] | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    model: str | None = None
    provider: str | None = None
    tool_trace: list[dict[str, Any]] | None = None
    warnings: list[str] = Field(default_factory=list)
    attempt_log: list[dict[str, Any]] | None = None
    repairs: list[dict[str, Any]] | None = None
    model_outputs: list[dict[str, Any]] | None = None
    aggregate_tokens: dict[str, Any] | None = None
    map_items: dict[str, Any] | None = None
    cached_from: dict[str, Any] | None = None
    """An llm step answered from a recorded model call instead of calling the model:
    ``{runId, stepId, recordedAt}`` of the call it came from (cost 0)."""


class StepRecord(StepWork):
    """One step of one run, the unit the mirror upserts (keyed by run id and step id)."""

    run_id: str
    environment: str
    step_id: str
    step_index: int
    name: str | None = None
    type: str
    status: StepStatus
    input: Any = None
    output: Any = None
    error: StepError | None = None
    reused_from_record_id: str | None = None
    parent_step_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


def record_digest(record: StepRecord) -> str:
    """A step record's fingerprint: an activity that writes its own step's row returns the
    digest of what it wrote, and the interpreter skips its own write when its record has the
    same one (anything that differs, it writes)."""
    return hashlib.sha256(record.model_dump_json().encode(errors="surrogatepass")).hexdigest()


class RunRecord(CamelModel):
    """The run row the mirror upserts at start and at the end of a run."""

    run_id: str
    environment: str
    workflow_id: str
    workflow_version: int
    status: RunStatus
    input: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: StepError | None = None
    actual_cost: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    trigger: str = "api"
    trigger_id: str | None = None
    source_run_id: str | None = None
    from_step_id: str | None = None
    parent_run_id: str | None = None
    parent_step_id: str | None = None
    workflow_slug: str | None = None
    """Not a column (the row has the workflow's id): what metrics label the run with."""
    trace_id: str | None = None
    """Set by the worker's tracing (activities/tracing.py): the run's trace id; None: kept."""
    started_at: datetime | None = None
    finished_at: datetime | None = None


class StepRecords(CamelModel):
    """Several step records written in one mirror call, in order (after ``run``, the run's
    own "running" record when it has not been written yet)."""

    records: list[StepRecord]
    run: RunRecord | None = None


class StepProgress(CamelModel):
    """A step's state as the progress query reports it."""

    step_id: str
    status: StepStatus
    attempts: int = 0
    error: str | None = None


class RunProgress(CamelModel):
    """Answer of the interpreter's `progress` query."""

    run_id: str
    status: RunStatus
    current_step_id: str | None = None
    steps: list[StepProgress] = Field(default_factory=list)
    actual_cost: float | None = None


class RunResult(CamelModel):
    """What the interpreter returns when a run completes."""

    run_id: str
    status: RunStatus
    output: Any = None
    actual_cost: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    steps: list[StepRecord] = Field(default_factory=list)
