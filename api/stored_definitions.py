"""A stored version's definition read back for a run, a rerun, a preview or an evaluation.

Every version was checked when it was saved, so reading it back should never fail; if a row
no longer reads as a definition (written by an older release, or edited in the database)
the caller gets a 409 naming the version and its problems, never a 500.
"""

from __future__ import annotations

from pydantic import ValidationError

from api.errors import ApiError
from definition.validation import problems_from_pydantic
from schema.definition import WorkflowDefinition
from store.tables import WorkflowVersionRow


def definition_of(version: WorkflowVersionRow) -> WorkflowDefinition:
    """The version's definition; 409 ``definition_unreadable`` when it does not read."""
    try:
        return WorkflowDefinition.model_validate(version.definition)
    except ValidationError as exc:
        problems = problems_from_pydantic(exc, version.definition)
        raise ApiError(409, "definition_unreadable",
                       f"version {version.version} of this workflow no longer reads as a "
                       "definition: save a new version (PUT /api/workflows/{slug})",
                       problems) from None
