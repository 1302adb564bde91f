"""A payload over ``limits.max_payload_bytes`` fails its step or its run at once, with
``payload_too_large``, and Temporal agrees (issue 12). Before, such a payload reached the
SDK's own size check, which fails the workflow task: Temporal showed the run Running
forever, while the mirror said ``completed``.

These tests keep every payload in history (payload storage off) and set a small limit, so
they hold whatever the storage does with larger payloads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug

LIMIT = 200_000
PAGE = "the quick brown fox jumps over the lazy dog\n" * 2_000  # 88,000 bytes


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.payloads.storage = "none"
    settings.limits.max_payload_bytes = LIMIT
    settings.tools.http_allow_private = True
    return settings


@pytest.fixture
def page_url() -> Iterator[str]:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/page"
    finally:
        server.shutdown()
        server.server_close()


async def temporal_status(service: Service, run_id: str) -> WorkflowExecutionStatus | None:
    client = await connect(service.settings, "dev")
    return (await client.get_workflow_handle(run_id).describe()).status


async def test_page_then_transform_over_the_limit_fails_payload_too_large(
        service: Service, page_url: str) -> None:
    # The page (88 KB, twice in the tool's result with its trace) fits; the transform's
    # result, three copies of it, does not.
    slug = unique_slug("page")
    await service.create_workflow({"id": slug, "name": "page", "steps": [
        {"id": "fetch", "type": "tool", "toolName": "http_request", "args": {"url": page_url}},
        {"id": "shape", "type": "transform", "expression": "{page: body, copy: body, more: body}",
         "inputMapping": {"body": "outputs.fetch.body"}},
    ]})

    started = time.monotonic()
    response = await service.run(slug, {})
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "failed", run
    assert elapsed < 10, elapsed
    steps = {s["stepId"]: s for s in run["steps"]}
    assert steps["fetch"]["status"] == "completed"
    assert steps["fetch"]["outputJson"]["body"] == PAGE
    assert steps["shape"]["status"] == "failed", run["error"]
    error = steps["shape"]["error"]
    assert error["type"] == "payload_too_large"
    assert f"{LIMIT:,}-byte limit" in error["message"]
    assert "transform_step" in error["message"]
    assert run["error"]["type"] == "payload_too_large"
    assert await temporal_status(service, run["id"]) == WorkflowExecutionStatus.FAILED


def fan_out(slug: str) -> dict[str, Any]:
    """A map whose items each fit, but whose output (the run's result) does not."""
    return {"id": slug, "name": "fan out",
            "variables": [{"name": "docs", "type": "array", "required": True}],
            "steps": [{"id": "each", "type": "map", "items": "input.docs", "batchSize": 1,
                       "steps": [{"id": "keep", "type": "transform",
                                  "inputMapping": {"doc": "input.item"}}]}]}


async def test_run_result_over_the_limit_is_never_recorded_completed(service: Service) -> None:
    slug = unique_slug("fan")
    await service.create_workflow(fan_out(slug))

    run = (await service.run(slug, {"docs": [PAGE] * 3})).json()["run"]

    assert run["status"] == "failed", run
    assert run["error"]["type"] == "payload_too_large"
    assert "the run's result is" in run["error"]["message"]
    assert run["outputJson"] is None
    # The step itself completed: it is the result that could not be handed to Temporal.
    assert [s["status"] for s in run["steps"]] == ["completed"]
    assert await temporal_status(service, run["id"]) == WorkflowExecutionStatus.FAILED


async def test_preview_over_the_limit_fails_and_still_lists_its_steps(service: Service) -> None:
    # A preview has no mirror: its steps travel in the failure, stripped to fit the limit.
    response = await service.http.post("/api/workflows/preview", json={
        "definition": fan_out(unique_slug("fan")), "input": {"docs": [PAGE] * 3}})

    assert response.status_code == 200, response.text
    preview = response.json()["preview"]
    assert preview["status"] == "failed"
    assert preview["error"]["type"] == "payload_too_large"
    assert [(s["stepId"], s["status"]) for s in preview["steps"]] == [("each", "completed")]


async def test_results_within_the_limit_complete(service: Service) -> None:
    slug = unique_slug("fan")
    await service.create_workflow(fan_out(slug))

    run = (await service.run(slug, {"docs": [PAGE, "short"]})).json()["run"]

    assert run["status"] == "completed", run
    assert run["outputJson"] == [{"doc": PAGE}, {"doc": "short"}]
    assert await temporal_status(service, run["id"]) == WorkflowExecutionStatus.COMPLETED


async def test_map_batch_result_over_the_limit_fails_its_items_by_name(service: Service) -> None:
    # One batch of three items whose input fits (3 x 44 KB) but whose result, each item
    # tripling its page, does not.
    slug = unique_slug("fan")
    definition = fan_out(slug)
    definition["steps"][0]["batchSize"] = 3
    definition["steps"][0]["steps"][0]["expression"] = "{a: doc, b: doc, c: doc}"
    await service.create_workflow(definition)

    run = (await service.run(slug, {"docs": [PAGE[:44_000]] * 3})).json()["run"]

    assert run["status"] == "failed", run
    step = run["steps"][0]
    assert step["error"]["type"] == "map_item_failed"
    assert f"over the {LIMIT:,}-byte limit" in step["error"]["message"]
    assert {e["type"] for e in step["mapItems"]["errors"]} == {"payload_too_large"}
    assert await temporal_status(service, run["id"]) == WorkflowExecutionStatus.FAILED
