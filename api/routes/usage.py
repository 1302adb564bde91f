"""`GET /api/usage`: spend by model, workflow or environment over a time range."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentKey, StateDep
from api.errors import ApiError
from schema.bounds import IsoDateTime
from schema.usage import UsageEnvelope, UsageGroupBy
from store.usage import usage_report

router = APIRouter(prefix="/api/usage", tags=["usage"])


@router.get("", response_model=UsageEnvelope)
async def get_usage(
    state: StateDep, key: CurrentKey,
    since: Annotated[IsoDateTime | None, Query(description="runs created at or after")] = None,
    until: Annotated[IsoDateTime | None, Query(description="runs created before")] = None,
    group_by: Annotated[UsageGroupBy, Query(alias="groupBy")] = "model",
) -> UsageEnvelope:
    """Cost and tokens of the key's environment, from the mirror (cost tracking)."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ApiError(422, "validation_error",
                           f"'{name}' needs a time zone, e.g. 2025-01-01T00:00:00Z")
    if since and until and until <= since:
        raise ApiError(422, "validation_error", "'until' must be after 'since'")
    report = await usage_report(state.store.engine, key.environment, group_by, since, until)
    return UsageEnvelope(usage=report)
