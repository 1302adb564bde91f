"""Rows to the public shapes of schema.api."""

from __future__ import annotations

from collections.abc import Sequence

from schema.api import RunPublic, StepPublic, WorkflowPublic
from schema.tables import RunRow, StepRow, WorkflowRow


def step_public(row: StepRow) -> StepPublic:
    """A step row as the API shows it."""
    return StepPublic(
        id=str(row.id), step_id=row.step_id, step_index=row.step_index, name=row.name,
        type=row.type, status=row.status, input_json=row.input_json,
        output_json=row.output_json, rendered=row.rendered, error=row.error,
        tokens_in=row.tokens_in, tokens_out=row.tokens_out, cached_tokens=row.cached_tokens,
        cost=row.cost, attempts=row.attempts, retry_count=row.retry_count, model=row.model,
        provider=row.provider, tool_trace=row.tool_trace, warnings=row.warnings,
        attempt_log=row.attempt_log, repairs=row.repairs, model_outputs=row.model_outputs,
        aggregate_tokens=row.aggregate_tokens,
        reused_from_step_record_id=str(row.reused_from_record_id)
        if row.reused_from_record_id else None,
        parent_step_id=row.parent_step_id, map_items=row.map_items,
        started_at=row.started_at, finished_at=row.finished_at, duration_ms=row.duration_ms,
    )


def run_public(row: RunRow, steps: Sequence[StepRow] | None = None,
               slug: str | None = None) -> RunPublic:
    """A run row (and optionally its steps) in seed 000's shape."""
    return RunPublic(
        id=str(row.id), workflow_id=str(row.workflow_id), workflow_slug=slug,
        workflow_version=row.workflow_version, status=row.status, trigger=row.trigger,
        input_json=row.input_json, output_json=row.output_json, error=row.error,
        actual_cost=row.actual_cost, tokens_in=row.tokens_in, tokens_out=row.tokens_out,
        source_run_id=str(row.source_run_id) if row.source_run_id else None,
        from_step_id=row.from_step_id, overrides=row.overrides,
        parent_run_id=str(row.parent_run_id) if row.parent_run_id else None,
        parent_step_id=row.parent_step_id, started_at=row.started_at,
        finished_at=row.finished_at, created_at=row.created_at,
        steps=[step_public(s) for s in steps] if steps is not None else None,
    )


def workflow_public(row: WorkflowRow, definition: dict[str, object] | None = None,
                    warnings: list[str] | None = None) -> WorkflowPublic:
    """A workflow row with its current definition."""
    return WorkflowPublic(
        id=str(row.id), slug=row.slug, name=row.name, description=row.description,
        current_version=row.current_version, created_at=row.created_at,
        updated_at=row.updated_at, definition=definition, warnings=warnings or [],
    )
