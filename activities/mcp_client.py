"""MCP servers through the official `mcp` SDK: list a server's tools, call one. Each call opens
its own session (a stdio server is started for it and stopped after), so a crashed server
cannot poison later calls; a stdio start costs about 1.5 s of a Python server's import time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from promptpilot.settings import McpServer, McpSettings


class McpUnavailable(Exception):
    """The server is not configured, did not start, or did not answer in time."""


@dataclass(frozen=True)
class McpTool:
    """One tool of a server: its name, description and arguments' JSON Schema."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def entry(self) -> str:
        """How a step names it: ``mcp:<server>/<tool>``."""
        return f"mcp:{self.server}/{self.name}"


def parse_entry(entry: str) -> tuple[str, str | None]:
    """``mcp:files/read`` -> (``files``, ``read``); ``mcp:files`` -> (``files``, None)."""
    server, _, tool = entry.removeprefix("mcp:").partition("/")
    return server, tool or None


@asynccontextmanager
async def _session(server: McpServer) -> AsyncIterator[ClientSession]:
    if server.url is not None:
        async with streamable_http_client(server.url) as (read, write, *_), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session
        return
    params = StdioServerParameters(command=server.command or "", args=server.args,
                                   env=server.env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def _server(settings: McpSettings, name: str) -> McpServer:
    found = settings.servers.get(name)
    if found is None:
        raise McpUnavailable(f"no MCP server '{name}' is configured; configured: "
                             f"{', '.join(sorted(settings.servers)) or 'none'}")
    return found


async def list_tools(settings: McpSettings, name: str) -> list[McpTool]:
    """Every tool of server ``name``."""
    server = _server(settings, name)
    try:
        async with asyncio.timeout(settings.timeout_seconds), _session(server) as session:
            listed = await session.list_tools()
    except (OSError, TimeoutError, ExceptionGroup) as exc:
        raise McpUnavailable(f"MCP server '{name}' did not list its tools: {exc!r}") from exc
    return [McpTool(name, t.name, t.description or "", dict(t.input_schema))
            for t in listed.tools]


async def call_tool(settings: McpSettings, name: str, tool: str,
                    arguments: dict[str, Any]) -> tuple[Any, bool]:
    """(result, is_error): the structured result when the tool gives one, else its text."""
    server = _server(settings, name)
    try:
        async with asyncio.timeout(settings.timeout_seconds), _session(server) as session:
            result = await session.call_tool(tool, arguments)
    except (OSError, TimeoutError, ExceptionGroup) as exc:
        raise McpUnavailable(f"MCP server '{name}' did not answer {tool}: {exc!r}") from exc
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    structured = result.structured_content
    if structured is not None and set(structured) == {"result"}:
        structured = structured["result"]
    return (text if result.is_error or structured is None else structured), result.is_error


class ToolLists:
    """Servers' tool lists, each reused for ``max_age`` seconds (a failed listing is not kept),
    keyed by the server's configuration so two deployments' same-named servers never mix."""

    def __init__(self, max_age: float = 60.0) -> None:
        self.max_age = max_age
        self._lists: dict[str, tuple[float, list[McpTool]]] = {}

    async def get(self, settings: McpSettings, name: str) -> list[McpTool]:
        """The tools of server ``name``, listed again once the kept list is too old."""
        key = f"{name}:{_server(settings, name).model_dump_json()}"
        kept = self._lists.get(key)
        if kept is not None and time.monotonic() - kept[0] < self.max_age:
            return kept[1]
        tools = await list_tools(settings, name)
        self._lists[key] = (time.monotonic(), tools)
        return tools
