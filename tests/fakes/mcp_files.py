"""A small MCP server over stdio, written with the official SDK, for the tests: files of a
folder (PROMPTPILOT_TEST_MCP_ROOT) and one tool that always fails."""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("files")
ROOT = Path(os.environ.get("PROMPTPILOT_TEST_MCP_ROOT", "."))


@server.tool()
def read_file(name: str) -> str:
    """The text of one file of the folder."""
    return (ROOT / Path(name).name).read_text()


@server.tool()
def list_files() -> list[str]:
    """The names of the folder's files."""
    return sorted(p.name for p in ROOT.iterdir() if p.is_file())


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason given (as the SDK's ToolError, whose message the client
    sees; any other exception reaches it as "Error executing tool fail")."""
    raise ToolError(reason)


if __name__ == "__main__":
    server.run()
