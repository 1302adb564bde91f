"""The http_request tool: one HTTP call, answered as ``{status, headers, body, truncated}``.

Decisions:
- Only http and https URLs; anything else is TOOL_BAD_INPUT naming ``url``.
- Private, loopback, link-local, multicast, reserved and unspecified targets are refused with
  TOOL_FORBIDDEN_TARGET unless ``tools.http_allow_private`` (see ``addresses``). The request
  goes to the address that was vetted, with the original Host header and TLS server name.
- Redirects are followed by hand, up to ``tools.http_max_redirects`` hops, and every hop is
  vetted and pinned like the first URL: a public URL cannot bounce the worker to a private
  one (TOOL_FORBIDDEN_TARGET naming the hop). Past the limit (or with it at 0) the 3xx is the
  result, with its ``location`` header. A hop to another origin drops credential headers.
- 2xx and 3xx are results. Other 4xx fail the step for good (TOOL_FAILED, non-retryable): the
  same request would get the same answer, and a failed step names the status instead of handing
  an error page to the next prompt. 429, 5xx, timeouts and connection errors are retried,
  honouring Retry-After; for a POST, PUT, PATCH or DELETE only a 429 (not applied) is, unless
  ``retryWrites`` says so: then every attempt carries the same ``Idempotency-Key``.
- Bodies are read up to ``tools.http_max_response_bytes``; a longer body is cut, returned as
  text and flagged ``truncated``. JSON content types are parsed when the body is whole.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator
from temporalio.exceptions import ApplicationError

from activities.tools.addresses import vetted_address
from activities.tools.failures import status_error, transport_error
from activities.tools.registry import ToolContext, tool
from schema.base import CamelModel
from schema.errors import ErrorType

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
ParamValue = str | int | float | bool | list[str | int | float | bool]
KEPT_HEADERS = ("content-type", "content-length", "location", "retry-after", "etag",
                "last-modified")
DEFAULT_PORTS = {"http": 80, "https": 443}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEY_NAMESPACE = uuid.UUID("6f1c2d1e-5b7a-4c1e-9d38-2f8e4a9b7c10")
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key",
                                "api-key"})


class HttpRequestArgs(CamelModel):
    """Arguments of http_request."""

    url: str = Field(min_length=1, description="Absolute http(s) URL.")
    method: Method = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, ParamValue] = Field(default_factory=dict, description="Query parameters.")
    body: Any = Field(default=None, alias="json", description="JSON request body.")
    timeout_seconds: float | None = Field(default=None, gt=0, le=600)
    retry_writes: bool = Field(default=False, description=(
        "Retry a POST, PUT, PATCH or DELETE after a 5xx, a timeout or a broken connection "
        "(it may have been applied), sending an Idempotency-Key derived from the run and "
        "step, the same on every attempt. Off: such a failure fails the step for good."))

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as err:
            raise ValueError(f"not a valid URL: {err}") from err
        if url.scheme not in DEFAULT_PORTS:
            raise ValueError(f"only http and https URLs are allowed, not {url.scheme or 'none'!r}")
        if not url.host:
            raise ValueError("the URL has no host")
        return value


@tool("http_request", description="Make an HTTP request to a public URL and return status, "
      "headers and body (parsed JSON when the response is JSON).")
async def http_request(args: HttpRequestArgs, ctx: ToolContext) -> dict[str, Any]:
    """Send the request to a vetted address (each redirect hop too) and read a capped body."""
    url, method, body = httpx.URL(args.url), str(args.method), args.body
    headers, params = httpx.Headers(args.headers), args.params or None
    writes = method in WRITE_METHODS
    if writes and args.retry_writes and "idempotency-key" not in headers:
        headers["Idempotency-Key"] = idempotency_key(ctx.call_key)
    hops = ctx.settings.tools.http_max_redirects
    for hop in range(hops + 1):
        try:
            response, raw, truncated, label = await _send(ctx, args, method, url, headers,
                                                          params, body, via=hop > 0)
        except ApplicationError as err:
            if writes and not args.retry_writes:
                raise _unretried_write(err, method) from err
            raise
        location = response.headers.get("location")
        if not response.is_redirect or not location or hop == hops:
            break
        url, method, body, headers = _next_hop(url, location, method, body, headers,
                                               response.status_code, label)
        params = None  # the location carries its own query
    text = raw.decode(_charset(response), errors="replace")
    if response.status_code >= 400:
        error = status_error(response, label, text)
        if writes and not args.retry_writes and response.status_code != 429:
            error = _unretried_write(error, method)
        raise error
    return {
        "status": response.status_code,
        "headers": {name: response.headers[name] for name in KEPT_HEADERS
                    if name in response.headers},
        "body": _body(response, raw, text, truncated),
        "truncated": truncated,
    }


def idempotency_key(call_key: str) -> str:
    """The Idempotency-Key of one call: derived from the run and step, so every attempt
    sends the same one and the target can tell a retry from a new request."""
    return str(uuid.uuid5(_KEY_NAMESPACE, call_key))


def _unretried_write(err: ApplicationError, method: str) -> ApplicationError:
    """A write that may have been applied is not sent again unless the step says so (one
    that never reached the server, a refused connection, is)."""
    if err.non_retryable or isinstance(err.__cause__, httpx.ConnectError):
        return err
    return ApplicationError(
        f"{err.message}; not retried: the {method} may have been applied (set retryWrites "
        "to retry it with an Idempotency-Key)", *err.details, type=err.type,
        non_retryable=True)


async def _send(ctx: ToolContext, args: HttpRequestArgs, method: str, url: httpx.URL,
                headers: httpx.Headers, params: Any, body: Any, *, via: bool
                ) -> tuple[httpx.Response, bytes, bool, str]:
    host = url.raw_host.decode("ascii")
    label = f"{method} {url.scheme}://{host}{url.path}"
    headers, extensions = httpx.Headers(headers), dict[str, Any]()
    if not ctx.settings.tools.http_allow_private:
        try:
            ip = await vetted_address(host, url.port or DEFAULT_PORTS[url.scheme])
        except ApplicationError as err:
            if not via:
                raise
            raise ApplicationError(f"{err.message} (a redirect led there)", *err.details,
                                   type=err.type, non_retryable=True) from None
        if str(ip) != host:
            # Connect to the vetted address itself: no second lookup can swap in another.
            headers["Host"] = url.netloc.decode("ascii")
            if url.scheme == "https":
                extensions["sni_hostname"] = host
            url = url.copy_with(host=str(ip))
    request = ctx.http.build_request(
        method, url, headers=headers, params=params, json=body,
        timeout=args.timeout_seconds or ctx.settings.tools.http_timeout_seconds,
        extensions=extensions,
    )
    try:
        response = await ctx.http.send(request, stream=True, follow_redirects=False)
        try:
            raw, truncated = await _read_capped(response,
                                                ctx.settings.tools.http_max_response_bytes)
        finally:
            await response.aclose()
    except httpx.TransportError as err:
        raise transport_error(err, label) from err
    return response, raw, truncated, label


def _next_hop(url: httpx.URL, location: str, method: str, body: Any, headers: httpx.Headers,
              status: int, label: str) -> tuple[httpx.URL, str, Any, httpx.Headers]:
    try:
        target = url.join(location)
    except httpx.InvalidURL as err:
        raise ApplicationError(f"{label} redirected to an invalid URL: {err}",
                               type=ErrorType.TOOL_FAILED, non_retryable=True) from None
    if target.scheme not in DEFAULT_PORTS or not target.host:
        raise ApplicationError(f"{label} redirected to {target.scheme or 'a'!s} URL; only http "
                               "and https are followed", type=ErrorType.TOOL_FAILED,
                               non_retryable=True)
    # As browsers and httpx do: 303 (and 301/302 after a POST) becomes a GET without body.
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
    if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
        headers = httpx.Headers({name: value for name, value in headers.items()
                                 if name.lower() not in CREDENTIAL_HEADERS})
    return target, method, body, headers


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > limit:
            return bytes(buffer[:limit]), True
    return bytes(buffer), False


def _charset(response: httpx.Response) -> str:
    charset = response.charset_encoding or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


def _body(response: httpx.Response, raw: bytes, text: str, truncated: bool) -> Any:
    content_type = response.headers.get("content-type", "").lower()
    if raw and not truncated and "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            return text
    return text
