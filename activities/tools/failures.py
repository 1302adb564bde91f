"""How HTTP outcomes become Temporal errors, shared by http_request and the search backends.

429 and 5xx are retryable (``next_retry_delay`` from Retry-After); other 4xx are not, since
sending the same request again cannot help; connect errors and timeouts are retryable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from temporalio.exceptions import ApplicationError

from schema.errors import ErrorType

MAX_RETRY_AFTER = timedelta(minutes=10)


def retry_after(response: httpx.Response) -> timedelta | None:
    """The server's Retry-After (seconds or an HTTP date), capped at ten minutes."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        delay = timedelta(seconds=max(0.0, float(value)))
    except ValueError:
        try:
            delay = parsedate_to_datetime(value) - datetime.now(UTC)
        except (TypeError, ValueError):
            return None
    return min(max(delay, timedelta(0)), MAX_RETRY_AFTER)


def status_error(response: httpx.Response, label: str, excerpt: str = "") -> ApplicationError:
    """The error for a failed status: retryable for 429 and 5xx, final for other 4xx."""
    status = response.status_code
    retryable = status == 429 or status >= 500
    message = f"{label} answered HTTP {status}"
    if excerpt:
        message += f": {excerpt[:200]}"
    return ApplicationError(
        message,
        {"status": status},
        type=ErrorType.TOOL_FAILED,
        non_retryable=not retryable,
        next_retry_delay=retry_after(response) if retryable else None,
    )


def transport_error(err: httpx.TransportError, label: str) -> ApplicationError:
    """A retryable error for timeouts, refused connections and broken responses."""
    kind = "timed out" if isinstance(err, httpx.TimeoutException) else "failed"
    return ApplicationError(
        f"{label} {kind}: {type(err).__name__}: {err}",
        type=ErrorType.TOOL_FAILED,
        non_retryable=False,
    )
