"""The environment's API keys: `GET /api/keys` lists them, `DELETE /api/keys/{id}` revokes one.

Keys are env-scoped like everything else: any key of an environment may list and revoke that
environment's keys (keys carry no narrower scope), never another environment's. The key itself
is never shown again, only its id, name and prefix; creating one stays `promptpilot keys
create`, next to the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from api.deps import CurrentKey, StateDep
from api.errors import not_found
from schema.base import CamelModel
from store.access_tables import ApiKeyRow
from store.key_admin import list_keys, revoke_key

router = APIRouter(prefix="/api/keys", tags=["keys"])


class KeyPublic(CamelModel):
    """A key as its owners see it: never the key, only what tells it apart. (The row's
    `last_used_at` is not shown: nothing writes it, as a write per request would cost.)"""

    id: str
    name: str
    environment: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyEnvelope(CamelModel):
    """`{"success": true, "key": {...}}`."""

    success: bool = True
    key: KeyPublic


class KeyListEnvelope(CamelModel):
    """Every key of the caller's environment, revoked ones too, oldest first."""

    success: bool = True
    keys: list[KeyPublic]


def _public(row: ApiKeyRow) -> KeyPublic:
    return KeyPublic(id=str(row.id), name=row.name, environment=row.environment,
                     prefix=row.prefix, created_at=row.created_at, revoked_at=row.revoked_at)


@router.get("", response_model=KeyListEnvelope)
async def get_keys(state: StateDep, key: CurrentKey) -> KeyListEnvelope:
    """The keys of the calling key's environment."""
    rows = await list_keys(state.store.engine, key.environment)
    return KeyListEnvelope(keys=[_public(row) for row in rows])


@router.delete("/{key_id}", response_model=KeyEnvelope)
async def delete_key(key_id: uuid.UUID, state: StateDep, key: CurrentKey) -> KeyEnvelope:
    """Revoke a key: its next request is refused (401). Revoking a revoked key changes
    nothing; a key of another environment is not found."""
    row = await revoke_key(state.store.engine, key.environment, key_id)
    if row is None:
        raise not_found(f"key '{key_id}'")
    return KeyEnvelope(key=_public(row))
