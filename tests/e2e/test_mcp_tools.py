"""MCP servers: a configured server's tools are listed with their schemas and an agent step
calls them over stdio through the official SDK (tests/fakes/mcp_files.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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


def reader(slug: str, tool: str, **args: Any) -> dict[str, Any]:
    return {"id": slug, "name": "read", "variables": [{"name": "file"}], "steps": [
        {"id": "read", "type": "tool", "toolName": tool, "args": args,
         "inputMapping": {"name": "input.file"}},
        {"id": "keep", "type": "transform", "inputMapping": {"text": "steps.read.output"}}]}


async def read_run(service: Service, tool: str, **args: Any) -> dict[str, Any]:
    """Save a reader of `tool` and run it on notes.txt; the run as the API answers it."""
    slug = unique_slug("mcpstep")
    await service.create_workflow(reader(slug, tool, **args))
    response = await service.run(slug, {"file": "notes.txt"})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["run"]
    return run


async def test_a_tool_step_calls_one_tool_of_the_mcp_server(service: Service) -> None:
    run = await read_run(service, "mcp:files/read_file")
    assert run["status"] == "completed", run
    step = run["steps"][0]
    assert step["outputJson"] == "otters sleep holding hands"
    assert run["outputJson"] == {"text": "otters sleep holding hands"}
    [trace] = step["toolTrace"]
    assert trace["toolName"] == "mcp:files/read_file"
    assert trace["args"] == {"name": "notes.txt"}


async def test_an_mcp_tools_error_fails_the_tool_step_with_it(service: Service) -> None:
    run = await read_run(service, "mcp:files/fail", reason="disk on fire")
    assert run["status"] == "failed", run
    step = run["steps"][0]
    assert step["status"] == "failed"
    assert step["error"]["type"] == "tool_failed"
    assert "disk on fire" in step["error"]["message"], step["error"]
    assert step["retryCount"] == 0  # the server's own answer: not retried


@pytest.mark.parametrize(("tool", "says"), [
    ("mcp:files", "names no tool: a tool step calls one, as 'mcp:files/<tool>'"),
    ("mcp:nowhere/read", "no MCP server 'nowhere' is configured (configured: mcp:files, "
     "mcp:gone)"),
])
async def test_a_tool_step_naming_no_mcp_tool_is_refused_at_save(
        service: Service, tool: str, says: str) -> None:
    slug = unique_slug("mcpbadstep")
    response = await service.http.post("/api/workflows", json=reader(slug, tool))
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["problems"]
    assert problem["pointer"] == "/steps/0/toolName"
    assert says in problem["message"]
    assert (await service.http.get(f"/api/workflows/{slug}")).status_code == 404
