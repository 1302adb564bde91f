"""Schemathesis hooks for the API fuzz test: every 4xx body is our error envelope."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """4xx answers carry ``{"success": false, "error": {"code", "message"}}``, no stack."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict), f"4xx body is not an object: {body!r}"
    assert body.get("success") is False, f"4xx without success=false: {body}"
    error = body.get("error")
    assert isinstance(error, dict), f"4xx without an error object: {body}"
    assert isinstance(error.get("code"), str), f"4xx without a code: {body}"
    assert error["code"], f"4xx with an empty code: {body}"
    assert isinstance(error.get("message"), str), f"4xx without a message: {body}"
    assert error["message"], f"4xx with an empty message: {body}"
    assert "Traceback" not in error["message"], f"a stack trace leaked: {body}"
    return True
