"""Triggers: API bodies, per-type config and the triggered-start payload."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from schema.base import CamelModel, RequestBody
from schema.bounds import IsoDateTime, ScheduleSeconds, VersionNumber
from schema.run import RunStatus

TriggerType = Literal["manual", "scheduled", "webhook", "api", "event"]
OverlapPolicy = Literal["skip", "buffer_one", "buffer_all", "cancel_other", "terminate_other",
                        "allow_all"]
VersionPolicy = Literal["latest", "pinned"]


class IntervalSpec(CamelModel):
    """Fire every `everySeconds`, shifted by `offsetSeconds` (epoch-aligned, as Temporal does)."""

    every_seconds: ScheduleSeconds = Field(ge=1)
    offset_seconds: ScheduleSeconds = 0


class ScheduleConfig(CamelModel):
    """`config` of a `scheduled` trigger; the cron text is kept as written."""

    cron_expressions: list[str] = Field(default_factory=list, max_length=20)
    intervals: list[IntervalSpec] = Field(default_factory=list, max_length=20)
    timezone: str = "UTC"
    jitter_seconds: ScheduleSeconds = 0
    overlap_policy: OverlapPolicy = "skip"
    catchup_window_seconds: ScheduleSeconds = Field(default=60, ge=10)

    @model_validator(mode="after")
    def _something_fires(self) -> ScheduleConfig:
        if not self.cron_expressions and not self.intervals:
            raise ValueError("give at least one of cronExpressions or intervals")
        return self


class EventConfig(CamelModel):
    """`config` of an `event` trigger: when a run of the source workflow ends, start this one.

    `filter` is a JMESPath expression over `{run, output}` that must be truthy;
    `inputMapping` maps each input name to a dot path over the same `{run, output}`.
    """

    source_workflow_slug: str
    source_workflow_id: str | None = None  # set by the server from the slug
    on_status: list[RunStatus] = Field(default=["completed"], min_length=1)
    filter: str | None = None
    input_mapping: dict[str, str] = Field(default_factory=dict)


class TriggerCreate(RequestBody):
    """Body of `POST /api/triggers`."""

    workflow_slug: str
    name: str = Field(min_length=1, max_length=200)
    type: TriggerType
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)
    input: dict[str, Any] = Field(default_factory=dict)
    version_policy: VersionPolicy = "latest"
    pinned_version: VersionNumber | None = None


class TriggerUpdate(RequestBody):
    """Body of `PUT /api/triggers/{id}`: every field optional; the type never changes."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    input: dict[str, Any] | None = None
    version_policy: VersionPolicy | None = None
    pinned_version: VersionNumber | None = None


class ExecuteRequest(RequestBody):
    """Body of `POST /api/triggers/{id}/execute`: input overrides the trigger's stored input."""

    input: dict[str, Any] | None = None


class PauseRequest(RequestBody):
    """Body of pause and unpause."""

    note: str | None = Field(default=None, max_length=500)


class BackfillRequest(RequestBody):
    """Body of `POST /api/triggers/{id}/backfill`: fire as if the schedule ran in the range."""

    start_at: IsoDateTime
    end_at: IsoDateTime
    overlap_policy: OverlapPolicy = "allow_all"


class ScheduleState(CamelModel):
    """Live schedule facts from Temporal plus the next fire times computed from the config."""

    schedule_id: str
    exists: bool | None = None
    """False when Temporal has no such schedule (deleted in the Temporal UI): the trigger's
    next change, pause, unpause, trigger or backfill makes it again from the trigger."""
    paused: bool | None = None
    note: str | None = None
    next_fire_times: list[datetime] = Field(default_factory=list)
    temporal_next_action_times: list[datetime] = Field(default_factory=list)
    recent_action_count: int | None = None


class RunSummary(CamelModel):
    """One recent run of a trigger."""

    id: str
    status: str
    trigger: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: float | None = None


class TriggerMetrics(CamelModel):
    """Execution metrics: counts by status and the last runs."""

    total: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    last_runs: list[RunSummary] = Field(default_factory=list)


class TriggerPublic(CamelModel):
    """A trigger as the API shows it; secrets appear only in the creation response."""

    id: str
    workflow_id: str
    workflow_slug: str | None = None
    environment: str
    name: str
    type: str
    """One of TriggerType (a row may hold another value: it is shown as it is)."""
    enabled: bool
    config: dict[str, Any]
    input: dict[str, Any] | None = None
    version_policy: str
    """One of VersionPolicy."""
    pinned_version: int | None = None
    created_at: datetime
    updated_at: datetime
    api_key: str | None = None
    webhook_secret: str | None = None
    webhook_url: str | None = None
    schedule: ScheduleState | None = None
    metrics: TriggerMetrics | None = None


class TriggerEnvelope(CamelModel):
    """`{"success": true, "trigger": {...}}`."""

    success: bool = True
    trigger: TriggerPublic


class TriggerListEnvelope(CamelModel):
    """Triggers of the caller's environment."""

    success: bool = True
    triggers: list[TriggerPublic]


class TriggeredRun(CamelModel):
    """`{"success": true, "runId": ..., "status": ...}`: answer of execute and webhooks."""

    success: bool = True
    run_id: str
    status: str
    trigger_id: str


class TriggeredStart(CamelModel):
    """Input of the triggered-start workflow: ids only, never a definition or a secret."""

    trigger_id: str
    environment: str
    trigger: Literal["scheduled", "event"] = "scheduled"
    input: dict[str, Any] | None = None
    source_run_id: str | None = None


class ResolveStart(CamelModel):
    """Input of the `resolve_triggered_start` activity: which trigger, and the run id to use."""

    start: TriggeredStart
    run_id: str
