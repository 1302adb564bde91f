"""The stored-prompt library under /api/prompts: versioned, env-scoped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import CurrentKey, StateDep
from api.errors import not_found
from api.state import AppState
from schema.bounds import VersionNumber
from schema.definition import SLUG_PATTERN
from schema.prompts import (
    PromptCreate,
    PromptEnvelope,
    PromptListEnvelope,
    PromptPublic,
    PromptUpdate,
    PromptVersionListEnvelope,
    PromptVersionPublic,
)
from store.prompts import PromptStore
from store.tables import PromptRow, PromptVersionRow

router = APIRouter(prefix="/api/prompts", tags=["prompts"])
# Slugs are checked by pattern, so nothing a slug cannot be (a NUL, say) reaches Postgres.
Slug = Annotated[str, Path(pattern=SLUG_PATTERN, description="the prompt's slug")]


def _version(row: PromptVersionRow) -> PromptVersionPublic:
    return PromptVersionPublic(version=row.version, prompt_system=row.prompt_system,
                               prompt_user=row.prompt_user, created_at=row.created_at)


def _public(row: PromptRow, version: PromptVersionRow | None = None) -> PromptPublic:
    return PromptPublic(id=row.slug, name=row.name, description=row.description,
                        current_version=row.current_version, created_at=row.created_at,
                        updated_at=row.updated_at,
                        version=_version(version) if version else None)


async def _load(state: AppState, environment: str, slug: str) -> tuple[PromptStore, PromptRow]:
    prompts = PromptStore(state.store.engine)
    row = await prompts.get(environment, slug)
    if row is None:
        raise not_found(f"prompt '{slug}'")
    return prompts, row


@router.post("", status_code=201, response_model=PromptEnvelope)
async def create_prompt(body: PromptCreate, state: StateDep, key: CurrentKey) -> PromptEnvelope:
    """Store a new prompt as version 1; 409 when the slug is taken."""
    row, version = await PromptStore(state.store.engine).create(key.environment, body)
    return PromptEnvelope(prompt=_public(row, version))


@router.get("", response_model=PromptListEnvelope)
async def list_prompts(state: StateDep, key: CurrentKey) -> PromptListEnvelope:
    """The prompts of the key's environment."""
    rows = await PromptStore(state.store.engine).list(key.environment)
    return PromptListEnvelope(prompts=[_public(r) for r in rows])


@router.get("/{slug}", response_model=PromptEnvelope)
async def get_prompt(
    slug: Slug, state: StateDep, key: CurrentKey,
    version: VersionNumber | None = None,
) -> PromptEnvelope:
    """A prompt with its current texts, or those of `?version=`."""
    prompts, row = await _load(state, key.environment, slug)
    found = await prompts.version(row.id, version or row.current_version)
    if found is None:
        raise not_found(f"version {version} of prompt '{slug}'")
    return PromptEnvelope(prompt=_public(row, found))


@router.put("/{slug}", response_model=PromptEnvelope)
async def update_prompt(slug: Slug, body: PromptUpdate, state: StateDep,
                        key: CurrentKey) -> PromptEnvelope:
    """Store new texts as a new immutable version; runs pinned to older ones keep them."""
    prompts, row = await _load(state, key.environment, slug)
    version = await prompts.update(row, body)
    updated = await prompts.get(key.environment, slug)
    return PromptEnvelope(prompt=_public(updated or row, version))


@router.get("/{slug}/versions", response_model=PromptVersionListEnvelope)
async def list_prompt_versions(slug: Slug, state: StateDep,
                               key: CurrentKey) -> PromptVersionListEnvelope:
    """Every version of a prompt, oldest first."""
    prompts, row = await _load(state, key.environment, slug)
    return PromptVersionListEnvelope(versions=[_version(v) for v in
                                               await prompts.versions(row.id)])
