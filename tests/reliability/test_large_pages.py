"""A 20 MB page fetched by http_request flows into a transform and the next prompt (slow on a
2-core machine, so it runs with `make test-reliability`; the 5 MB case runs in every suite:
tests/e2e/test_large_payloads.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import unique_slug
from tests.e2e.test_large_payloads import MB, big_text, history_bytes
from tests.fakes.llm_server import FakeLlmServer, ok
from tests.payload_support import serving
from tests.reliability.conftest import Record


@pytest.fixture
def page_url() -> Iterator[tuple[str, str]]:
    """A local web server answering GET /page with a 20 MB text page: (its URL, the page)."""
    page = big_text(20 * MB)
    body = page.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page", page
    finally:
        server.shutdown()
        server.server_close()


async def _finished(http: httpx.AsyncClient, run_id: str, seconds: float) -> dict[str, Any]:
    for _ in range(int(seconds * 5)):
        run: dict[str, Any] = (await http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
        if run["status"] in ("completed", "failed", "cancelled"):
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish in {seconds} s")


@pytest.mark.timeout(900)
async def test_20mb_fetched_page_flows_into_a_transform_and_the_next_prompt(
        settings: Settings, engine: AsyncEngine, llm: FakeLlmServer,
        page_url: tuple[str, str], record: Record) -> None:
    url, page = page_url
    own = settings.model_copy(deep=True)
    own.temporal.workflow_sandbox = False  # as the production worker runs
    own.tools.http_allow_private = True  # the page is served on this machine
    # A 20 MB page: the tool's cap, and the step output and template limits it flows through.
    own.tools.http_max_response_bytes = 21 * MB
    own.limits.max_step_output_bytes = 24 * MB
    own.limits.template_max_output_chars = 24_000_000
    own.limits.template_max_operations = 10_000_000  # the budget counts the values rendered
    # A step's mirror write carries the records still buffered (the page's and the
    # transform's): with three copies of the page it is ~85 MB.
    own.payloads.max_stored_bytes = 256 * MB
    slug = unique_slug("fetch")
    definition = {"id": slug, "name": "fetch a page", "steps": [
        {"id": "fetch", "type": "tool", "toolName": "http_request", "args": {"url": url}},
        {"id": "shape", "type": "transform", "expression": "{page: body, chars: length(body)}",
         "inputMapping": {"body": "outputs.fetch.body"}},
        {"id": "summarise", "type": "llm", "model": "gpt-4o-mini",
         "promptUser": "Summarise these {{chars}} characters: {{page}}",
         "inputMapping": {"page": "outputs.shape.page", "chars": "outputs.shape.chars"}},
    ]}
    llm.enqueue(ok("a page of foxes"))
    async with serving(own) as http:
        assert (await http.post("/api/workflows", json=definition)).status_code == 201
        began = time.monotonic()
        started = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {}})
        run = await _finished(http, started.json()["run"]["id"], 600)
        took = time.monotonic() - began
        assert run["status"] == "completed", run.get("error")
        assert run["outputJson"] == "a page of foxes"
        shape = next(s for s in run["steps"] if s["stepId"] == "shape")
        assert shape["outputJson"]["chars"] == len(page)
        assert llm.requests[-1].body["messages"][-1]["content"] == (
            f"Summarise these {len(page)} characters: {page}")
        client = await connect(own, "dev")
        history = await client.get_workflow_handle(run["id"]).fetch_history()
        assert history_bytes(history) < 500_000, history_bytes(history)
    record(took, fault="none: a 20 MB page through http_request -> transform -> llm",
           historyBytes=history_bytes(history))
