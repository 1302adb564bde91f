"""Which workflow a `/api/workflows/{slug}` URL names: its slug, or the `workflowId` UUID."""

from __future__ import annotations

import uuid

from api.errors import not_found
from api.state import AppState
from store.tables import WorkflowRow, WorkflowVersionRow


def as_uuid(reference: str) -> uuid.UUID | None:
    """The UUID a reference spells, or None for a slug."""
    try:
        return uuid.UUID(reference)
    except ValueError:
        return None


async def find_workflow(state: AppState, environment: str, reference: str) -> WorkflowRow | None:
    """The workflow a slug or a UUID names in the environment; None when there is none.

    A UUID is looked up as the workflow's id first: the API returns it as `workflowId`, and
    new slugs may not be UUIDs (`create_workflow` refuses them), so the two never collide.
    """
    if (ident := as_uuid(reference)) is not None:
        row = await state.store.get_workflow_by_id(ident)
        if row is not None and row.environment == environment:
            return row
    return await state.store.get_workflow(environment, reference)


async def load_workflow(state: AppState, environment: str,
                        reference: str) -> tuple[WorkflowRow, WorkflowVersionRow]:
    """A workflow (by slug or UUID) and its current version, or a 404."""
    row = await find_workflow(state, environment, reference)
    if row is None:
        raise not_found(f"workflow '{reference}'")
    version = await state.store.get_version(row.id, row.current_version)
    if version is None:
        raise not_found(f"version {row.current_version} of workflow '{row.slug}'")
    return row, version
