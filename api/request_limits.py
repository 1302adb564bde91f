"""The door's first check, before any route, FastAPI or pydantic sees a request body.

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which would wrap every response and the
event streams in its own task): it refuses a body over ``limits.max_request_bytes`` with 413
``request_too_large`` (by ``Content-Length`` before reading a byte, and by counting when the
body comes chunked), then a body that nests deeper than ``limits.max_json_depth`` (422
``json_too_deep``) or holds a lone surrogate or NaN/Infinity (422 ``validation_error``).
The body it read is handed on to the app unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.json_checks import body_problem
from schema.limits import LimitsSettings
from schema.problems import Problem

_INLINE_BYTES = 64 * 1024
"""Bodies up to this size are checked on the event loop (well under a millisecond)."""


class RequestLimits:
    """Bounds every HTTP request body (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: LimitsSettings) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and check the body, then run the app with it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_request_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, "request_too_large", _too_large(limit))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            body += message.get("body", b"")
            if len(body) > limit:
                await _refuse(send, 413, "request_too_large", _too_large(limit))
                return
            more = bool(message.get("more_body", False))
        data = bytes(body)
        problem = None
        if len(data) > _INLINE_BYTES:
            # A large body's check can take a few hundred ms (seconds for one built to be
            # walked): in a worker thread, the event loop goes on serving everyone else.
            problem = await anyio.to_thread.run_sync(body_problem, data,
                                                     self.limits.max_json_depth)
        elif data:
            problem = body_problem(data, self.limits.max_json_depth)
        if problem is not None:
            await _refuse(send, 422, problem.code, problem.message,
                          [Problem(pointer=problem.pointer, message=problem.message)])
            return
        await self.app(scope, _replay(data, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body once, then the connection's own messages
    (a disconnect, which the event streams listen for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> str:
    return (f"the request body is larger than {limit:,} bytes "
            "(PROMPTPILOT_LIMITS__MAX_REQUEST_BYTES)")


async def _refuse(send: Send, status: int, code: str, message: str,
                  problems: list[Problem] | None = None) -> None:
    payload: dict[str, Any] = error_body(code, message, problems)
    content = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]})
    # The unread rest of an oversized body is discarded by the server once the answer is
    # sent (uvicorn drops body bytes after a complete response), never buffered: a client
    # that writes its whole body before reading still gets this answer, not a reset.
    await send({"type": "http.response.body", "body": content})
