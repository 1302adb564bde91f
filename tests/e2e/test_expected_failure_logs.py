"""Expected failures (a refused target, a spent budget) log one line each, no traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import FakeLlmServer, ok


def _about(caplog: pytest.LogCaptureFixture, run: dict[str, Any]) -> list[logging.LogRecord]:
    """Records at INFO or above that speak of the run's failure, and every traceback."""
    return [r for r in caplog.records if r.levelno >= logging.INFO and (
        r.exc_info or run["error"]["type"] in r.getMessage()
        or "Completing activity as failed" in r.getMessage())]


async def test_a_refused_target_logs_one_line(service: Service,
                                              caplog: pytest.LogCaptureFixture) -> None:
    slug = unique_slug("refused")
    await service.create_workflow({"id": slug, "name": "fetch", "variables": [
        {"name": "url", "type": "string", "required": True}], "steps": [
        {"id": "get", "type": "tool", "toolName": "http_request",
         "inputMapping": {"url": "input.url"}}]})
    caplog.set_level(logging.INFO)
    caplog.clear()
    run = (await service.run(slug, {"url": "http://127.0.0.1:9/x"})).json()["run"]
    assert run["status"] == "failed", run
    assert run["error"]["type"] == "tool_forbidden_target"
    [line] = _about(caplog, run)
    assert line.exc_info is None
    assert run["id"] in line.getMessage()
    assert "refusing to reach '127.0.0.1'" in line.getMessage()


async def test_a_spent_budget_logs_one_line(service: Service, llm: FakeLlmServer,
                                            caplog: pytest.LogCaptureFixture) -> None:
    definition = chain(unique_slug("budget"), 2)
    definition["maxCostUsd"] = 0.002
    definition["steps"][0]["maxTokens"] = 1000
    definition["steps"][1]["maxTokens"] = 4000
    llm.enqueue(ok("first", tokens_in=1000, tokens_out=1000))
    await service.create_workflow(definition)
    caplog.set_level(logging.INFO)
    caplog.clear()
    run = (await service.run(definition["id"], {"topic": "x"})).json()["run"]
    assert run["status"] == "failed", run
    assert run["error"]["type"] == "budget_exceeded"
    [line] = _about(caplog, run)
    assert line.exc_info is None
    assert run["id"] in line.getMessage()
    assert "budget exceeded" in line.getMessage()
