"""Web search backends, registered by the name ``tools.web_search_backend`` selects.

Each returns normalised results ``{title, url, snippet, source}``. Backends call the URL the
operator configured directly, without the http_request SSRF guard: a self-hosted SearXNG on
the private network is a normal setup.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from activities.tools.failures import status_error, transport_error
from activities.tools.registry import ToolContext
from schema.errors import ErrorType

Result = dict[str, str]
Backend = Callable[[str, int, ToolContext], Awaitable[list[Result]]]
BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"

_BACKENDS: dict[str, Backend] = {}


def backend(name: str) -> Callable[[Backend], Backend]:
    """Register a search backend under the name the settings use."""

    def decorate(fn: Backend) -> Backend:
        _BACKENDS[name] = fn
        return fn

    return decorate


def get_backend(name: str) -> Backend | None:
    """The backend registered under name ("none" never is)."""
    return _BACKENDS.get(name)


def not_configured(message: str) -> ApplicationError:
    """A final error telling the operator which setting to set."""
    return ApplicationError(message, type=ErrorType.TOOL_NOT_CONFIGURED, non_retryable=True)


@backend("offline")
async def offline(query: str, limit: int, ctx: ToolContext) -> list[Result]:
    """Deterministic canned results built from the query's words, for demos and tests."""
    words = re.findall(r"\w+", query.lower()) or ["query"]
    digest = hashlib.sha256(query.encode()).hexdigest()[:8]
    slug = "-".join(words)[:60]
    return [
        {
            "title": f"Offline result {n} for {query!r}: {words[(n - 1) % len(words)]}",
            "url": f"https://example.com/offline/{slug}/{digest}/{n}",
            "snippet": f"Canned offline search result {n} about {' '.join(words)}; "
            "no real search was made (tools.web_search_backend=offline).",
            "source": "offline",
        }
        for n in range(1, limit + 1)
    ]


@backend("searxng")
async def searxng(query: str, limit: int, ctx: ToolContext) -> list[Result]:
    """A SearXNG instance's JSON API (its settings must enable the json format)."""
    base = ctx.settings.tools.web_search_url
    if not base:
        raise not_configured("the searxng backend needs PROMPTPILOT_TOOLS__WEB_SEARCH_URL")
    data = await _get_json(ctx, "searxng", f"{base.rstrip('/')}/search",
                           {"q": query, "format": "json"}, {})
    rows = data.get("results") if isinstance(data, dict) else None
    return [_result(row, "content", "searxng") for row in (rows or [])[:limit]]


@backend("brave")
async def brave(query: str, limit: int, ctx: ToolContext) -> list[Result]:
    """The Brave Search API; ``web_search_url`` overrides its address (for tests and proxies)."""
    key = ctx.settings.tools.web_search_api_key
    if key is None or not key.get_secret_value():
        raise not_configured("the brave backend needs PROMPTPILOT_TOOLS__WEB_SEARCH_API_KEY")
    url = ctx.settings.tools.web_search_url or BRAVE_URL
    headers = {"X-Subscription-Token": key.get_secret_value(), "Accept": "application/json"}
    data = await _get_json(ctx, "brave", url, {"q": query, "count": limit}, headers)
    web = data.get("web") if isinstance(data, dict) else None
    rows = web.get("results") if isinstance(web, dict) else None
    return [_result(row, "description", "brave") for row in (rows or [])[:limit]]


def _result(row: Any, snippet_key: str, source: str) -> Result:
    row = row if isinstance(row, dict) else {}
    return {
        "title": str(row.get("title") or ""),
        "url": str(row.get("url") or ""),
        "snippet": str(row.get(snippet_key) or ""),
        "source": source,
    }


async def _get_json(
    ctx: ToolContext, label: str, url: str, params: dict[str, Any], headers: dict[str, str]
) -> Any:
    label = f"web_search backend {label}"
    try:
        response = await ctx.http.get(url, params=params, headers=headers,
                                      timeout=ctx.settings.tools.http_timeout_seconds)
    except httpx.TransportError as err:
        raise transport_error(err, label) from err
    if response.status_code >= 400:
        raise status_error(response, label, response.text)
    try:
        return response.json()
    except ValueError as err:
        raise ApplicationError(f"{label} did not answer JSON: {response.text[:200]}",
                               type=ErrorType.TOOL_FAILED, non_retryable=False) from err
