"""Rows to the public shapes of schema.api, for any row the tables can hold.

A JSON column holds whatever JSONB does, not only what our writers put there: a value of
another kind than the public field's (a string where an object is shown) is wrapped as
``{"value": ...}`` rather than failing the whole list it is in. Values too deep to show are
clipped when read (``store.database.read_json``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from schema.api import RunPublic, StepPublic, WorkflowPublic
from schema.definition import WorkflowDefinition
from schema.run import StepWork
from store.tables import RunRow, StepRow, WorkflowRow


def as_object(value: Any) -> dict[str, Any] | None:
    """A JSON object as is; any other value wrapped as ``{"value": ...}``."""
    return value if value is None or isinstance(value, dict) else {"value": value}


def as_objects(value: Any) -> list[dict[str, Any]] | None:
    """A JSON array of objects as is; other values or items wrapped (see ``as_object``)."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, dict) else {"value": item} for item in items]


def as_strings(value: Any) -> list[str] | None:
    """A JSON array of strings as is; other values or items as their JSON text."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]


def readable_definition(raw: Any) -> dict[str, Any]:
    """A stored definition as the pages read it: an object whose `steps` and `variables` are
    lists of objects, whatever the row holds (a page never fails on one bad version)."""
    definition = raw if isinstance(raw, dict) else {}
    shown = dict(definition)
    for key in ("steps", "variables"):
        items = definition.get(key)
        shown[key] = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    return shown


def shown_definition(raw: Any) -> Any:
    """A stored definition without the `null`s of unset optional fields (versions stored
    before they were left out still hold them), so it posts back as it is; a row that no
    longer reads as a definition is shown as it is."""
    try:
        definition = WorkflowDefinition.model_validate(raw)
    except ValidationError:
        return raw
    return definition.model_dump(mode="json", exclude_none=True)


def _reader(annotation: Any) -> Callable[[Any], Any]:
    """How a public field of this annotation reads whatever its JSON column holds."""
    readers: dict[Any, Callable[[Any], Any]] = {
        dict[str, Any] | None: as_object, list[dict[str, Any]] | None: as_objects,
        list[str] | None: as_strings}
    return readers.get(annotation, lambda value: value)


_WORK_READERS = {name: _reader(StepPublic.model_fields[name].annotation)
                 for name in StepWork.model_fields}


def step_public(row: StepRow) -> StepPublic:
    """A step row as the API shows it."""
    work = {name: read(getattr(row, name)) for name, read in _WORK_READERS.items()}
    return StepPublic(
        id=str(row.id), step_id=row.step_id, step_index=row.step_index, name=row.name,
        type=row.type, status=row.status, input_json=row.input_json,
        output_json=row.output_json, error=as_object(row.error), retry_count=row.retry_count,
        reused_from_step_record_id=str(row.reused_from_record_id)
        if row.reused_from_record_id else None,
        parent_step_id=row.parent_step_id, started_at=row.started_at,
        finished_at=row.finished_at, duration_ms=row.duration_ms, **work,
    )


def run_public(row: RunRow, steps: Sequence[StepRow] | None = None,
               slug: str | None = None) -> RunPublic:
    """A run row (and optionally its steps) as the API shows it."""
    return RunPublic(
        id=str(row.id), workflow_id=str(row.workflow_id), workflow_slug=slug,
        workflow_version=row.workflow_version, status=row.status, trigger=row.trigger,
        input_json=row.input_json, output_json=row.output_json, error=as_object(row.error),
        actual_cost=row.actual_cost, tokens_in=row.tokens_in, tokens_out=row.tokens_out,
        source_run_id=str(row.source_run_id) if row.source_run_id else None,
        from_step_id=row.from_step_id, overrides=as_object(row.overrides),
        parent_run_id=str(row.parent_run_id) if row.parent_run_id else None,
        parent_step_id=row.parent_step_id, started_at=row.started_at,
        finished_at=row.finished_at, created_at=row.created_at, trace_id=row.trace_id,
        steps=[step_public(s) for s in steps] if steps is not None else None,
    )


def workflow_public(row: WorkflowRow, definition: Any = None,
                    warnings: list[str] | None = None) -> WorkflowPublic:
    """A workflow row with its current definition."""
    return WorkflowPublic(
        id=str(row.id), slug=row.slug, name=row.name, description=row.description,
        current_version=row.current_version, created_at=row.created_at,
        updated_at=row.updated_at, definition=as_object(definition), warnings=warnings or [],
    )
