"""The inspector's session: an opaque id in an HttpOnly cookie, everything else server-side.

Signing in stores a random id in `pp_session` (HttpOnly, SameSite=Lax, Secure when the public
URL is https); Postgres keeps its digest, the key it acts as and a CSRF token
(`store.sessions`). The cookie never holds the API key. Every request looks the session up
again, joined to its key, so a revoked key or an expired session is refused at once.

CSRF: pages render the session's token into a meta tag and every form; the page's script
sends it back as the `X-PromptPilot-CSRF` header, forms as the `csrf` field (synchronizer
token). Before there is a session the login form's token is tied to a pre-session cookie,
`pp_login` (double submit): another site can make a browser post the form, but it can neither
read that cookie nor guess its value.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from api.state import AppState
from store.access_tables import ApiKeyRow
from store.sessions import Session, Sessions

SESSION_COOKIE = "pp_session"
LOGIN_COOKIE = "pp_login"
CSRF_HEADER = "X-PromptPilot-CSRF"
CSRF_FORM_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_FORM_SECONDS = 3600
LEGACY_COOKIES = ("pp_key", "pp_csrf")
"""Cookies of the inspector before sessions (`pp_key` held the key itself): cleared at sign-in."""


def csrf_ok(request: Request) -> bool:
    """A safe method, or an unsafe one carrying the resolved session's token in the header."""
    found: Session | None = getattr(request.state, "ui_session", None)
    return request.method in SAFE_METHODS or (
        found is not None and tokens_match(found.csrf_token, request.headers.get(CSRF_HEADER)))


def tokens_match(expected: str | None, presented: str | None) -> bool:
    """True when both are set and equal (compared in constant time)."""
    # As bytes: compare_digest refuses a str with non-ASCII characters (a forged form's).
    return bool(expected and presented) and hmac.compare_digest(
        (expected or "").encode(), (presented or "").encode())


def sessions(state: AppState) -> Sessions:
    """The session store over the app's database."""
    return Sessions(state.store.engine)


async def current_session(request: Request, state: AppState) -> Session | None:
    """The live session the cookie names (looked up once per request), or None."""
    if hasattr(request.state, "ui_session"):
        cached: Session | None = request.state.ui_session
        return cached
    session_id = request.cookies.get(SESSION_COOKIE)
    found = await sessions(state).find(session_id) if session_id else None
    request.state.ui_session = found
    return found


def _secure(state: AppState, request: Request) -> bool:
    public = state.settings.api.public_url
    return (public or str(request.base_url)).lower().startswith("https://")


def set_cookie(state: AppState, request: Request, response: Response, name: str, value: str,
               max_age: int) -> None:
    """An HttpOnly, SameSite=Lax cookie for the whole site (Secure behind https)."""
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
                        secure=_secure(state, request))


def login_token(request: Request) -> str:
    """The pre-session cookie's value ('' before the form was served)."""
    return request.cookies.get(LOGIN_COOKIE, "")


def login_form_token(request: Request) -> tuple[str, bool]:
    """The login form's token: the pre-session cookie's value, or a new one (then True: the
    response must set it with `set_login_cookie`)."""
    token = login_token(request)
    return (token, False) if len(token) >= 32 else (secrets.token_urlsafe(32), True)


def set_login_cookie(state: AppState, request: Request, response: Response, token: str) -> None:
    """The pre-session cookie the login form's token must match."""
    set_cookie(state, request, response, LOGIN_COOKIE, token, LOGIN_FORM_SECONDS)


async def start_session(state: AppState, request: Request, response: Response,
                        key: ApiKeyRow) -> None:
    """A new session for `key`, its id in the cookie; the pre-session cookie is dropped."""
    lifetime = state.settings.api.ui_session_seconds
    session_id, _ = await sessions(state).start(key.id, lifetime)
    set_cookie(state, request, response, SESSION_COOKIE, session_id, int(lifetime))
    for name in (LOGIN_COOKIE, *(c for c in LEGACY_COOKIES if c in request.cookies)):
        response.delete_cookie(name, path="/", httponly=True, samesite="lax")


async def end_session(state: AppState, request: Request, response: Response) -> None:
    """Sign out: the row goes, and the cookie with it."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await sessions(state).end(session_id)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
