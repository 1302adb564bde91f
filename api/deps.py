"""Dependencies as `Annotated` aliases: the app state and the caller's API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.state import AppState
from schema.tables import ApiKeyRow

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pp_...`")


def get_state(request: Request) -> AppState:
    """The process-wide services."""
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def current_key(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyRow:
    """The verified key; its environment scopes everything the request touches."""
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    row = await state.keys.verify(credentials.credentials)
    if row is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    return row


CurrentKey = Annotated[ApiKeyRow, Depends(current_key)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200,
           description="Starts with the same key return the same run"),
]
