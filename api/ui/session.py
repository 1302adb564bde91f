"""The inspector's session: the API key in an HttpOnly cookie, and a CSRF token beside it.

Signing in stores the key itself in `pp_key` (HttpOnly, SameSite=Strict, never in a URL or a
page) and a random token in `pp_csrf` (HttpOnly too). Pages render the token into a meta tag;
the page's script sends it back as the `X-PromptPilot-CSRF` header on every POST. The API
accepts the cookie in place of a Bearer key, but refuses a cookie-authenticated request that
changes something unless that header matches the cookie (double submit): another site can make
a browser send cookies, but it cannot read the token nor set a custom header without CORS.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

KEY_COOKIE = "pp_key"
CSRF_COOKIE = "pp_csrf"
CSRF_HEADER = "X-PromptPilot-CSRF"
CSRF_FORM_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_AGE_SECONDS = 8 * 3600


def cookie_key(request: Request) -> str | None:
    """The API key the browser holds, if any."""
    return request.cookies.get(KEY_COOKIE) or None


def csrf_token(request: Request) -> str:
    """The session's CSRF token ('' when there is no session)."""
    return request.cookies.get(CSRF_COOKIE, "")


def csrf_matches(request: Request, presented: str | None) -> bool:
    """True when `presented` equals the session's token (compared in constant time)."""
    expected = csrf_token(request)
    return bool(expected and presented) and hmac.compare_digest(expected, presented or "")


def csrf_ok(request: Request) -> bool:
    """A safe method, or an unsafe one carrying the session's token in the CSRF header."""
    return request.method in SAFE_METHODS or csrf_matches(request,
                                                          request.headers.get(CSRF_HEADER))


def start_session(request: Request, response: Response, key: str) -> None:
    """Set both cookies on `response`."""
    secure = request.url.scheme == "https"
    for name, value in ((KEY_COOKIE, key), (CSRF_COOKIE, secrets.token_urlsafe(32))):
        response.set_cookie(name, value, max_age=MAX_AGE_SECONDS, path="/", httponly=True,
                            samesite="strict", secure=secure)


def end_session(response: Response) -> None:
    """Clear both cookies on `response`."""
    for name in (KEY_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", httponly=True, samesite="strict")
