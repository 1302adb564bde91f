"""The API's key check with the inspector's session accepted in place of a Bearer key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import deps
from api.errors import ApiError
from api.ui.session import CSRF_HEADER, SESSION_COOKIE, csrf_ok, current_session
from store.tables import ApiKeyRow

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer pp_...`")


async def api_key(
    state: deps.StateDep, request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKeyRow:
    """The API's key check with the inspector's session accepted in place of a Bearer key.

    Installed over `api.deps.current_key` (api.ui.routes.install): a Bearer key (or no
    session cookie) goes to that check unchanged, throttling included; a session cookie is
    looked up here, and an unsafe method must carry the session's CSRF header. EventSource
    cannot set headers, so the run events stream is read with the cookie alone.
    """
    if credentials is not None or SESSION_COOKIE not in request.cookies:
        return await deps.current_key(state=state, request=request, credentials=credentials)
    found = await current_session(request, state)
    if found is None:
        raise ApiError(401, "unauthorized", "the inspector session has ended (signed out, "
                       "expired, or its key was revoked): sign in again")
    if not csrf_ok(request):
        raise ApiError(403, "csrf_failed", f"a cookie-authenticated {request.method} needs the "
                       f"'{CSRF_HEADER}' header from the inspector page")
    return found.key
