"""`GET /api/tools`: the registered tools and every configured MCP server's, with their argument
schemas (an MCP server that does not answer is listed with its error, not a 500; a server's
listing is reused for a minute)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from activities.mcp_client import McpUnavailable, ToolLists
from activities.tools.registry import tool_catalog
from api.deps import CurrentKey, StateDep
from promptpilot.settings import McpSettings

router = APIRouter(prefix="/api/tools", tags=["tools"])
# Listing a stdio server starts it (about 1.7 s): a listing is reused for a minute.
_LISTS = ToolLists()


async def _server(settings: McpSettings, name: str) -> list[dict[str, Any]]:
    try:
        return [{"name": tool.entry, "description": tool.description,
                 "inputSchema": tool.input_schema, "server": name}
                for tool in await _LISTS.get(settings, name)]
    except McpUnavailable as exc:
        return [{"name": f"mcp:{name}", "server": name, "error": str(exc)}]


@router.get("")
async def list_all_tools(_: CurrentKey, state: StateDep) -> dict[str, Any]:
    """Every tool a `tool` step may name, then the MCP servers' (`mcp:<server>/<tool>`) that
    agent steps may list."""
    mcp = state.settings.mcp
    servers = await asyncio.gather(*(_server(mcp, name) for name in sorted(mcp.servers)))
    return {"success": True, "tools": [*tool_catalog(), *(t for s in servers for t in s)]}
