"""Dependencies as `Annotated` aliases: the app state and the caller's API key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth_throttle import retry_after_header
from api.errors import ApiError
from api.state import AppState
from api.ui import session
from store.access_tables import ApiKeyRow
from store.keys import digest, prefix_of

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

    Bearer is the documented way. The inspector's session is accepted too (EventSource cannot
    set headers): the cookie names a server-side session (api.ui.session), never a key, and an
    unsafe method must carry the session's CSRF header.
    """
    token = credentials.credentials if credentials is not None else None
    if not token and session.SESSION_COOKIE in request.cookies:
        return await _session_key(state, request)
    if not token:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>'")
    # Asked before the key is looked up: a throttled client learns nothing about its guess,
    # and its guesses cost no database round trip; a key that verified lately goes through
    # (api.auth_throttle says who is throttled and why).
    throttle, client, prefix = state.auth_throttle, client_address(request), prefix_of(token)
    key_digest = digest(token)
    known = key_digest in throttle.recent_keys
    if not known:
        throttled(throttle.retry_after(client, prefix))
    row = await state.keys.verify(token)
    if row is None:
        # A key that verified here before and is refused now was revoked: its holder is not
        # guessing, so it is not counted (and stays a 401, however often it is sent).
        if not known:
            throttle.failed(client, prefix)
        raise ApiError(401, "unauthorized", "invalid or revoked API key")
    throttle.succeeded(client, prefix)
    throttle.recent_keys.add(key_digest)
    return row


async def _session_key(state: AppState, request: Request) -> ApiKeyRow:
    found = await session.current_session(request, state)
    if found is None:
        raise ApiError(401, "unauthorized", "the inspector session has ended (signed out, "
                       "expired, or its key was revoked): sign in again")
    if not session.csrf_ok(request):
        raise ApiError(403, "csrf_failed", f"a cookie-authenticated {request.method} needs the "
                       f"'{session.CSRF_HEADER}' header from the inspector page")
    return found.key


def client_address(request: Request) -> str:
    """The caller's address as the ASGI server reports it (behind a proxy: uvicorn's
    ``--forwarded-allow-ips`` decides whose ``X-Forwarded-For`` is believed)."""
    return request.client.host if request.client is not None else "unknown"


def throttled(retry_after: float | None) -> None:
    """Refuse with 429 and ``Retry-After`` when the throttle says wait."""
    if retry_after is not None:
        header = retry_after_header(retry_after)
        raise ApiError(429, "too_many_failed_attempts",
                       f"too many failed sign-in attempts from this address: retry in {header} s",
                       headers={"Retry-After": header})


CurrentKey = Annotated[ApiKeyRow, Depends(current_key)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=200,
           description="Starts with the same key return the same run"),
]
