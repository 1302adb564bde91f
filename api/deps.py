"""Dependencies as `Annotated` aliases: the app state and the caller's API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.state import AppState
from api.ui import session
from store.tables import ApiKeyRow

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pp_...`")


async def get_state(request: Request) -> AppState:
    """The process-wide services (async: a plain function would cost a thread-pool hop)."""
    state: AppState = request.app.state.services
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def current_key(
    state: StateDep, request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyRow:
    """The verified key; its environment scopes everything the request touches.

    Bearer is the documented way. The inspector's session cookie is accepted too (EventSource
    cannot set headers); a cookie-authenticated POST must carry the CSRF header (api.ui.session).
    """
    token = credentials.credentials if credentials is not None else None
    if not token and (token := session.cookie_key(request)) and not session.csrf_ok(request):
        raise ApiError(403, "csrf_failed", f"a cookie-authenticated {request.method} needs the "
                       f"'{session.CSRF_HEADER}' header from the inspector page")
    if not token:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    row = await state.keys.verify(token)
    if row is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    return row


CurrentKey = Annotated[ApiKeyRow, Depends(current_key)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200,
           description="Starts with the same key return the same run"),
]
