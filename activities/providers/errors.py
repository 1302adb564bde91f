"""Provider failures as Temporal ``ApplicationError``s typed with ``schema.errors.ErrorType``.

    status 429              -> PROVIDER_RATE_LIMITED   retryable, Retry-After honoured
    status 5xx, 529, 408/409 -> PROVIDER_UNAVAILABLE    retryable (408: PROVIDER_TIMEOUT)
    timeout / connection    -> PROVIDER_TIMEOUT / PROVIDER_UNAVAILABLE, retryable
    unparseable response    -> PROVIDER_BAD_RESPONSE   retryable
    400/422, 401/403, 404   -> BAD_REQUEST / AUTH / NOT_FOUND, non-retryable
    no key, unknown name    -> MISSING_CREDENTIALS / UNKNOWN_PROVIDER, non-retryable

Retryable errors carry ``next_retry_delay``: the server's ``retry-after-ms`` or ``Retry-After``
when given, else exponential backoff with full jitter, since Temporal has no jitter knob.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import ModuleType

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from schema.errors import ErrorType

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_SECONDS = 30.0

_STATUS_TYPES: dict[int, tuple[ErrorType, bool]] = {
    400: (ErrorType.PROVIDER_BAD_REQUEST, False),
    401: (ErrorType.PROVIDER_AUTH, False),
    403: (ErrorType.PROVIDER_AUTH, False),
    404: (ErrorType.PROVIDER_NOT_FOUND, False),
    408: (ErrorType.PROVIDER_TIMEOUT, True),
    409: (ErrorType.PROVIDER_UNAVAILABLE, True),
    422: (ErrorType.PROVIDER_BAD_REQUEST, False),
    429: (ErrorType.PROVIDER_RATE_LIMITED, True),
}

_KEY_HELP: dict[str, tuple[str, str]] = {
    "openai": ("OPENAI_API_KEY", "https://platform.openai.com/api-keys"),
    "anthropic": ("ANTHROPIC_API_KEY", "https://console.anthropic.com/settings/keys"),
}


def current_attempt() -> int:
    """The running activity's attempt number (1 outside an activity)."""
    return activity.info().attempt if activity.in_activity() else 1


def backoff_delay(attempt: int) -> timedelta:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * factor**(attempt-1)))."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * BACKOFF_FACTOR ** max(attempt - 1, 0))
    return timedelta(seconds=random.uniform(0, ceiling))


def retry_after(headers: Mapping[str, str] | None) -> timedelta | None:
    """The server's requested wait from ``retry-after-ms`` or ``Retry-After`` (seconds or date)."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return timedelta(milliseconds=max(float(millis), 0.0))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return timedelta(seconds=max(float(value), 0.0))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - datetime.now(UTC), timedelta(0))


def _error(
    message: str,
    kind: ErrorType,
    *,
    retryable: bool,
    headers: Mapping[str, str] | None = None,
    details: dict[str, object] | None = None,
) -> ApplicationError:
    delay = (retry_after(headers) or backoff_delay(current_attempt())) if retryable else None
    return ApplicationError(
        message, details or {}, type=kind, non_retryable=not retryable, next_retry_delay=delay
    )


def for_status(
    provider: str, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> ApplicationError:
    """The error for an HTTP status returned by a provider."""
    kind, retryable = _STATUS_TYPES.get(
        status,
        (ErrorType.PROVIDER_UNAVAILABLE, True) if status >= 500 else
        (ErrorType.PROVIDER_BAD_REQUEST, False),
    )
    message = f"{provider} answered HTTP {status}: {detail}"
    if kind is ErrorType.PROVIDER_AUTH:
        message += f" (check the API key: {key_hint(provider)})"
    return _error(message, kind, retryable=retryable, headers=headers,
                  details={"provider": provider, "status": status})


def body_detail(body: object, fallback: str) -> str:
    """The human message inside an OpenAI or Anthropic error body (``error.message``)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return fallback


def timed_out(provider: str) -> ApplicationError:
    """The request did not finish within the configured timeout."""
    return _error(f"{provider} did not answer in time", ErrorType.PROVIDER_TIMEOUT, retryable=True,
                  details={"provider": provider})


def unreachable(provider: str, detail: str) -> ApplicationError:
    """The provider could not be reached at all."""
    return _error(f"could not reach {provider}: {detail}", ErrorType.PROVIDER_UNAVAILABLE,
                  retryable=True, details={"provider": provider})


def bad_response(provider: str, detail: str) -> ApplicationError:
    """The provider answered with something the SDK could not read."""
    return _error(f"{provider} sent a response that could not be read: {detail}",
                  ErrorType.PROVIDER_BAD_RESPONSE, retryable=True, details={"provider": provider})


def key_hint(provider: str) -> str:
    """Where to put a provider's key, and where to get one."""
    env_var, page = _KEY_HELP.get(
        provider, (f"PROMPTPILOT_LLM__COMPATIBLE__{provider.upper()}__API_KEY", "")
    )
    return f"set {env_var}" + (f"; create a key at {page}" if page else "")


def missing_credentials(provider: str) -> ApplicationError:
    """No API key is configured for a provider that needs one."""
    return _error(f"no API key configured for provider {provider!r}: {key_hint(provider)}",
                  ErrorType.MISSING_CREDENTIALS, retryable=False, details={"provider": provider})


def unknown_provider(name: str, known: Iterable[str], model: str = "") -> ApplicationError:
    """A provider name no registry entry or settings section knows (``""``: none inferred)."""
    what = (f"unknown LLM provider {name!r}" if name else
            f"no provider given and none inferred from model {model!r} (write 'provider/model')")
    return _error(
        f"{what}; known providers: {', '.join(sorted(known))} "
        "(add OpenAI-compatible servers under PROMPTPILOT_LLM__COMPATIBLE__<NAME>__BASE_URL)",
        ErrorType.UNKNOWN_PROVIDER, retryable=False, details={"provider": name},
    )


@contextmanager
def sdk_errors(provider: str, sdk: ModuleType) -> Iterator[None]:
    """Translate an SDK call's exceptions into typed ``ApplicationError``s.

    The openai and anthropic SDKs share one exception tree (both are generated by Stainless),
    so one mapping serves both: pass the SDK module.
    """
    try:
        yield
    except sdk.APIStatusError as exc:
        detail = body_detail(exc.body, exc.message)
        raise for_status(provider, exc.status_code, detail, exc.response.headers) from exc
    except sdk.APITimeoutError as exc:
        raise timed_out(provider) from exc
    except sdk.APIConnectionError as exc:
        raise unreachable(provider, str(exc)) from exc
    except (sdk.APIResponseValidationError, json.JSONDecodeError) as exc:
        raise bad_response(provider, type(exc).__name__) from exc
    except sdk.APIError as exc:  # an error event inside a streamed answer
        raise bad_response(provider, f"error in the stream: {exc.message}") from exc
    # A stream broken after its headers: the SDK's own errors cover only the request.
    except httpx.TimeoutException as exc:
        raise timed_out(provider) from exc
    except httpx.TransportError as exc:
        raise unreachable(provider, f"the stream broke off: {type(exc).__name__}") from exc
