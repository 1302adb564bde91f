"""The Postgres mirror's tables (SQLModel): workflows and prompts with their versions, runs,
steps, queued starts and stored payloads. Every row carries its environment. The other tables
live beside it: ``trigger_tables``, ``access_tables``, ``limit_tables``; ``all_tables`` imports
them all (what migrations compare against).

Imported by the store and migrations only: workflow code never imports this module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from schema.run import StepWork
from store.columns import json_column, stamp, ts, utcnow


class _DocumentHead(SQLModel):
    """The head row of a versioned document (a workflow, a stored prompt): its slug, its name
    and which version is current; the documents themselves live in immutable version rows."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    environment: str = Field(max_length=32, index=True)
    slug: str = Field(max_length=64)
    name: str = Field(max_length=200)
    description: str | None = None
    current_version: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True),
                                 nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True),
                                 nullable=False)


class _DocumentVersion(SQLModel):
    """One immutable version of a versioned document; its head's foreign key is its own."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    environment: str = Field(max_length=32, index=True)
    version: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True),
                                 nullable=False)


class WorkflowRow(_DocumentHead, table=True):
    """A stored workflow; its definitions live in versions."""

    __tablename__ = "workflows"
    __table_args__ = (UniqueConstraint("environment", "slug", name="uq_workflows_env_slug"),)


class WorkflowVersionRow(_DocumentVersion, table=True):
    """One immutable version of a workflow definition."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version", name="uq_versions_wf_version"),)

    workflow_id: uuid.UUID = Field(foreign_key="workflows.id", ondelete="CASCADE")
    definition: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))


class RunRow(SQLModel, table=True):
    """One run of a workflow; its id is the Temporal workflow id."""

    __tablename__ = "workflow_runs"
    __table_args__ = (
        Index("ix_runs_env_workflow_created", "environment", "workflow_id", "created_at"),
        Index("ix_runs_env_created", "environment", "created_at"),
        Index("ix_runs_source_run", "source_run_id"),
        UniqueConstraint("environment", "idempotency_key", name="uq_runs_env_idempotency"),
    )

    id: uuid.UUID = Field(primary_key=True)
    environment: str = Field(max_length=32, index=True)
    workflow_id: uuid.UUID = Field(foreign_key="workflows.id", ondelete="CASCADE")
    workflow_version: int
    status: str = Field(max_length=16)
    trigger: str = Field(default="api", max_length=32)
    input_json: dict[str, Any] | None = json_column()
    output_json: Any = json_column()
    error: dict[str, Any] | None = json_column()
    actual_cost: float | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    source_run_id: uuid.UUID | None = None
    from_step_id: str | None = Field(default=None, max_length=64)
    overrides: dict[str, Any] | None = json_column()
    idempotency_key: str | None = Field(default=None, max_length=200)
    # Set by trigger starts (migration 0003); request_hash refuses a reused key with a new body.
    trigger_id: uuid.UUID | None = Field(default=None, index=True)
    request_hash: str | None = Field(default=None, max_length=64)
    # Child runs of `workflow` steps (migration 0005): the parent run and its step.
    parent_run_id: uuid.UUID | None = Field(default=None, index=True)
    parent_step_id: str | None = Field(default=None, max_length=64)
    # The run's OpenTelemetry trace id, hex (migration 0014; README: Traces).
    trace_id: str | None = Field(default=None, max_length=32)
    started_at: datetime | None = ts()
    finished_at: datetime | None = ts()
    created_at: datetime = stamp()


class StepRow(SQLModel, table=True):
    """One step of one run, upserted by the mirror activity (unique per run and stepId); its
    work columns are named as the fields of ``schema.run.StepWork``."""

    __tablename__ = "workflow_run_steps"
    __table_args__ = (UniqueConstraint("run_id", "step_id", name="uq_steps_run_step"),)

    id: uuid.UUID = Field(primary_key=True)
    environment: str = Field(max_length=32, index=True)
    run_id: uuid.UUID = Field(foreign_key="workflow_runs.id", ondelete="CASCADE")
    step_id: str = Field(max_length=64)
    step_index: int
    name: str | None = None
    type: str = Field(max_length=16)
    status: str = Field(max_length=16)
    input_json: Any = json_column()
    output_json: Any = json_column()
    rendered: dict[str, Any] | None = json_column()
    error: dict[str, Any] | None = json_column()
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    cost: float | None = None
    attempts: int = 0
    retry_count: int = 0
    model: str | None = None
    provider: str | None = None
    tool_trace: list[dict[str, Any]] | None = json_column()
    warnings: list[str] | None = json_column()
    attempt_log: list[dict[str, Any]] | None = json_column()
    repairs: list[dict[str, Any]] | None = json_column()
    model_outputs: list[dict[str, Any]] | None = json_column()
    aggregate_tokens: dict[str, Any] | None = json_column()
    reused_from_record_id: uuid.UUID | None = None
    # Migration 0005: the parallel step an inner step ran in; a map step's item summary.
    parent_step_id: str | None = Field(default=None, max_length=64)
    map_items: dict[str, Any] | None = json_column()
    cached_from: dict[str, Any] | None = json_column()
    started_at: datetime | None = ts()
    finished_at: datetime | None = ts()
    duration_ms: float | None = None
    updated_at: datetime = stamp()


# The upsert writes every field of a step's work into the column of the same name.
if missing := set(StepWork.model_fields) - set(StepRow.model_fields):
    raise TypeError(f"StepRow lacks columns for step fields {sorted(missing)}")


class PromptRow(_DocumentHead, table=True):
    """A stored prompt; its texts live in immutable versions."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("environment", "slug", name="uq_prompts_env_slug"),)


class PromptVersionRow(_DocumentVersion, table=True):
    """One immutable version of a stored prompt's texts."""

    __tablename__ = "prompt_versions"
    __table_args__ = (UniqueConstraint("prompt_id", "version", name="uq_prompt_versions"),)

    prompt_id: uuid.UUID = Field(foreign_key="prompts.id", ondelete="CASCADE")
    prompt_system: str | None = None
    prompt_user: str


class PayloadBlobRow(SQLModel, table=True):
    """A Temporal payload kept outside history (migration 0006): history holds a reference
    to it (namespace, workflow id, digest). Content-addressed within its workflow, so the
    same encrypted bytes stored twice (a replay, a repeated write) are one row. Rows follow
    their run's retention by ``stored_at``: ``promptpilot payloads prune``."""

    __tablename__ = "payload_blobs"
    __table_args__ = (Index("ix_payload_blobs_stored_at", "stored_at"),)

    namespace: str = Field(primary_key=True, max_length=255)
    workflow_id: str = Field(sa_column=Column(Text, primary_key=True))
    """The workflow the payload belongs to (a run's id); empty when stored without one."""
    digest: str = Field(primary_key=True, max_length=64)
    """SHA-256 of ``data``, hex: checked again when the payload is read."""
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    """The serialized payload, as the codec left it (encrypted when keys are set)."""
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = stamp()
    stored_at: datetime = stamp()
    """Last time a write asked for it: pruning goes by this."""


class RunStartRow(SQLModel, table=True):
    """A run accepted but not yet started in Temporal (migration 0007): written with its run
    row, removed once Temporal has the workflow. While it exists the dispatcher holds the run
    (the reconciler does not fail it as an orphan)."""

    __tablename__ = "run_starts"
    __table_args__ = (Index("ix_run_starts_due", "next_attempt_at"),)

    run_id: uuid.UUID = Field(primary_key=True, foreign_key="workflow_runs.id",
                              ondelete="CASCADE")
    environment: str = Field(max_length=32)
    start_input: str = Field(sa_column=Column(Text, nullable=False))
    """The interpreter's input (``RunWorkflowInput``) as JSON text: text, not JSONB, so the
    workflow gets its input's keys in the order they were sent."""
    attempts: int = 0
    next_attempt_at: datetime = stamp()
    claimed_until: datetime | None = ts()
    """A dispatcher's lease: others skip the row until then (the start is idempotent anyway)."""
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = stamp()


class LlmAnswerRow(SQLModel, table=True):
    """A recorded model answer (migration 0012), keyed by what determines it: an identical call
    with ``llmCache: use`` is answered from here, cost 0."""

    __tablename__ = "llm_answers"
    __table_args__ = (Index("ix_llm_answers_recorded_at", "recorded_at"),)

    environment: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=64)
    """SHA-256 of the call's provider, model, messages, schema and parameters."""
    result: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    run_id: str = Field(max_length=100)
    step_id: str = Field(max_length=100)
    recorded_at: datetime = stamp()


class EvaluationRow(SQLModel, table=True):
    """An evaluation (migration 0013): its request, then its cases and summary when done."""

    __tablename__ = "evaluations"

    id: uuid.UUID = Field(primary_key=True)
    environment: str = Field(max_length=32, index=True)
    workflow_id: uuid.UUID = Field(foreign_key="workflows.id", ondelete="CASCADE")
    status: str = Field(max_length=16)
    candidate_version: int | None = None
    request: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    cases: list[dict[str, Any]] | None = json_column()
    summary: dict[str, Any] | None = json_column()
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = stamp()
    finished_at: datetime | None = ts()
