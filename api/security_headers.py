"""Security headers on every API response, where a route (or the inspector) set none.

JSON is never meant to be rendered, framed or sniffed: ``nosniff``, no referrer, no framing
(``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``), and for JSON bodies a CSP
that lets nothing load. Each header is only added when absent, so the inspector's own policy
(``api.ui.headers``) and any route's choice stand.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_POLICY = "default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY = "frame-ancestors 'none'"  # /docs and /redoc load their own scripts
_DEFAULTS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
             (b"x-frame-options", b"DENY"))


class SecurityHeaders:
    """Pure ASGI middleware (no body buffering, streams untouched): adds absent headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _DEFAULTS if name not in present]
                if b"content-security-policy" not in present:
                    kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                    policy = JSON_POLICY if b"json" in kind else PAGE_POLICY
                    headers.append((b"content-security-policy", policy.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
