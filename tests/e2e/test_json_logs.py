"""PROMPTPILOT_LOG_FORMAT=json: one JSON object per line, carrying the run id, step id and
environment of the work that logged it; keys never appear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from promptpilot import logs
from tests.conftest import Service, unique_slug
from tests.definitions import chain
from tests.fakes.llm_server import FakeLlmServer, ok


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure("json", "INFO", stream)
    root = logging.getLogger()
    level = root.level
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_json_log_line_names_its_run_and_step(
        service: Service, llm: FakeLlmServer, json_lines: io.StringIO) -> None:
    slug = unique_slug("jsonlog")
    await service.create_workflow(chain(slug, 1))
    llm.enqueue(ok("fine"))
    run = (await service.run(slug, {"topic": "x"})).json()["run"]
    assert run["status"] == "completed"
    logging.getLogger("promptpilot.test").warning("key pp_dev_test_key, Bearer abc.def")

    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    mine = [e for e in lines if e.get("run_id") == run["id"] and e.get("step_id") == "s1"]
    assert mine, lines[-5:]
    assert {"time", "level", "logger", "message"} <= mine[0].keys()
    assert mine[0]["environment"] == "dev"
    leaked = lines[-1]["message"]
    assert "pp_dev_test_key" not in leaked
    assert "abc.def" not in leaked
    assert leaked == "key [redacted], Bearer [redacted]"
