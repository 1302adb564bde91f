"""The web_search tool; the backend comes from the settings."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StringConstraints

from activities.tools.registry import ToolContext, tool
from activities.tools.search_backends import get_backend, not_configured
from schema.base import CamelModel


class WebSearchArgs(CamelModel):
    """Arguments of web_search."""

    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="What to search for."
    )
    limit: int = Field(default=5, ge=1, le=20, description="How many results, 1 to 20.")


@tool("web_search", description="Search the web and return results as {title, url, snippet}.")
async def web_search(args: WebSearchArgs, ctx: ToolContext) -> dict[str, Any]:
    """Run the query on the configured backend."""
    name = ctx.settings.tools.web_search_backend
    search = get_backend(name)
    if search is None:
        raise not_configured(
            f"web_search has no backend (tools.web_search_backend={name!r}); set "
            "PROMPTPILOT_TOOLS__WEB_SEARCH_BACKEND to offline, searxng or brave"
        )
    return {"query": args.query, "results": await search(args.query, args.limit, ctx)}
