"""MCP servers: a configured server's tools are listed with their schemas and an agent step
calls them over stdio through the official SDK (tests/fakes/mcp_files.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from promptpilot.settings import McpServer, Settings
from tests.conftest import Service, unique_slug
from tests.e2e.test_agent_steps import agent, run
from tests.fakes.llm_server import OPENAI_PATH, FakeLlmServer, ok, tool_calls


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings with the files server (its folder holds notes.txt)."""
    (tmp_path / "notes.txt").write_text("otters sleep holding hands")
    settings.mcp.servers = {
        "files": McpServer(command=sys.executable, args=["-m", "tests.fakes.mcp_files"],
                           env={"PROMPTPILOT_TEST_MCP_ROOT": str(tmp_path)}),
        "gone": McpServer(command=str(tmp_path / "no-such-server"))}
    return settings


async def test_the_servers_tools_are_listed_with_their_schemas(service: Service) -> None:
    listed = (await service.http.get("/api/tools")).json()["tools"]
    tools = {t["name"]: t for t in listed}
    assert "web_search" in tools
    read = tools["mcp:files/read_file"]
    assert read["inputSchema"]["required"] == ["name"]
    assert read["description"] == "The text of one file of the folder."
    assert "did not list its tools" in tools["mcp:gone"]["error"]


async def test_an_agent_reads_a_file_through_the_mcp_server(
        service: Service, llm: FakeLlmServer) -> None:
    llm.enqueue(tool_calls([("mcp__files__read_file", {"name": "notes.txt"}),
                            ("mcp__files__fail", {"reason": "disk on fire"})]),
                ok("They hold hands."))
    result = await run(service, agent(unique_slug("mcp"), "gpt-4o-mini", tools=["mcp:files"]))

    assert result["status"] == "completed", result
    calls = result["steps"][0]["rendered"]["turns"][0]["toolCalls"]
    assert calls[0]["tool"] == "mcp:files/read_file"
    assert calls[0]["result"] == "otters sleep holding hands"
    assert calls[1]["errorType"] == "tool_failed"  # the tool's error went back to the model
    sent = [r.body for r in llm.requests if r.path == OPENAI_PATH][-2:]
    offered = {t["function"]["name"] for t in sent[0]["tools"]}
    assert offered == {"mcp__files__read_file", "mcp__files__list_files", "mcp__files__fail"}
    assert "otters sleep holding hands" in str(sent[1]["messages"])


async def test_an_mcp_server_that_is_not_configured_is_refused_at_save(
        service: Service) -> None:
    response = await service.http.post("/api/workflows", json=agent(
        unique_slug("mcpbad"), "gpt-4o-mini", tools=["mcp:nowhere/read"]))
    assert response.status_code == 422
    assert "/steps/0/tools/0" in response.text
    assert "no MCP server 'nowhere'" in response.text
