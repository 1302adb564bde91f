"""One definition version, and the diff between two: `/api/workflows/{slug}/versions/...`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import CurrentKey, StateDep
from api.errors import ApiError, not_found
from api.presenters import as_object, readable_definition, shown_definition
from api.state import AppState
from api.workflow_lookup import load_workflow
from definition.diff import diff_definitions
from schema.api import VersionDiffEnvelope, VersionEnvelope, VersionPublic
from schema.bounds import VersionNumber
from schema.problems import Problem
from store.tables import WorkflowRow, WorkflowVersionRow

router = APIRouter(prefix="/api/workflows", tags=["workflows"])


async def _version(state: AppState, workflow: WorkflowRow, number: int,
                   parameter: str) -> WorkflowVersionRow:
    row = await state.store.get_version(workflow.id, number)
    if row is None:
        message = (f"workflow '{workflow.slug}' has no version {number} "
                   f"(versions 1..{workflow.current_version})")
        raise ApiError(404, "not_found", message,
                       [Problem(pointer=f"/{parameter}", message=message, field=parameter)])
    return row


# Declared before `/versions/{version}`, which would otherwise capture "diff".
@router.get("/{slug}/versions/diff", response_model=VersionDiffEnvelope)
async def diff_versions(
    slug: str, state: StateDep, key: CurrentKey,
    from_: Annotated[VersionNumber, Query(alias="from", description="older version")],
    to: Annotated[VersionNumber | None, Query(description="newer version (default current)")]
    = None,
) -> VersionDiffEnvelope:
    """Per-step changes from one version to another, as JSON pointers into `to`."""
    workflow, current = await load_workflow(state, key.environment, slug)
    old = await _version(state, workflow, from_, "from")
    new = current if to is None else await _version(state, workflow, to, "to")
    # Both sides as shown: a version stored with `null`s and one without them do not differ.
    steps, changes = diff_definitions(readable_definition(shown_definition(old.definition)),
                                      readable_definition(shown_definition(new.definition)))
    return VersionDiffEnvelope(from_version=old.version, to_version=new.version, steps=steps,
                               changes=changes)


@router.get("/{slug}/versions/{version}", response_model=VersionEnvelope)
async def get_version(slug: str, version: Annotated[VersionNumber, Path()], state: StateDep,
                      key: CurrentKey) -> VersionEnvelope:
    """One immutable version of a workflow's definition."""
    workflow, _ = await load_workflow(state, key.environment, slug)
    if (row := await state.store.get_version(workflow.id, version)) is None:
        raise not_found(f"version {version} of workflow '{slug}'")
    shown = as_object(shown_definition(row.definition)) or {}
    return VersionEnvelope(version=VersionPublic(version=row.version, created_at=row.created_at,
                                                 definition=shown))
