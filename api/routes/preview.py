"""Preview routes: dry-run a stored or an unsaved definition."""

from __future__ import annotations

from fastapi import APIRouter

from api.definition_checks import save_checks
from api.deps import CurrentKey, StateDep
from api.preview import relocate, run_preview
from api.routes.workflows import load_workflow
from api.stored_definitions import definition_of
from definition.validation import DefinitionInvalid
from schema.preview import DefinitionPreviewRequest, PreviewEnvelope, PreviewRequest

router = APIRouter(prefix="/api/workflows", tags=["preview"])
UNSAVED = "unsaved"


@router.post("/preview", response_model=PreviewEnvelope)
async def preview_definition(body: DefinitionPreviewRequest, state: StateDep,
                             key: CurrentKey) -> PreviewEnvelope:
    """Dry-run a definition sent in the body; nothing is stored."""
    try:
        definition = save_checks(state.settings, body.definition, "/definition")
    except DefinitionInvalid as exc:
        raise relocate(exc, "/definition") from None
    return PreviewEnvelope(preview=await run_preview(
        state, key.environment, definition, workflow_id=UNSAVED, version=None,
        given=body.input, use_sample_data=body.use_sample_data, wait_seconds=body.timeout_seconds,
        llm_cache=body.llm_cache, side_effects=body.allow_side_effects,
        max_cost_usd=body.max_cost_usd))


@router.post("/{slug}/preview", response_model=PreviewEnvelope)
async def preview_workflow(slug: str, body: PreviewRequest, state: StateDep,
                           key: CurrentKey) -> PreviewEnvelope:
    """Dry-run the current version of a workflow; writes nothing to the runs tables."""
    row, version = await load_workflow(state, key.environment, slug)
    definition = definition_of(version)
    return PreviewEnvelope(preview=await run_preview(
        state, key.environment, definition, workflow_id=str(row.id), version=version.version,
        given=body.input, use_sample_data=body.use_sample_data, wait_seconds=body.timeout_seconds,
        llm_cache=body.llm_cache, side_effects=body.allow_side_effects,
        max_cost_usd=body.max_cost_usd))
