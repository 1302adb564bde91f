"""With payload storage on, a local activity's input over the storage's maximum fails its
step ``payload_too_large`` at once. Before, the SDK's storage step offloaded it while the
worker finished the workflow task, the storage refused it, and the task retried forever."""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import WorkflowExecutionStatus

from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import FakeLlmServer, ok

MAX_STORED = 150_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.payloads.storage = "postgres"
    settings.payloads.max_stored_bytes = MAX_STORED
    return settings


async def test_transform_input_over_the_storage_maximum_fails_at_once(
        service: Service, llm: FakeLlmServer) -> None:
    # The answer (60 KB; twice in the llm result) fits the storage; the transform's input
    # holds it three times and does not.
    llm.enqueue(ok("fox " * 15_000))
    slug = unique_slug("stored")
    await service.create_workflow({"id": slug, "name": "twice", "steps": [
        {"id": "write", "type": "llm", "model": "gpt-4o-mini", "promptUser": "Write"},
        {"id": "both", "type": "transform", "expression": "{a: a, b: b, c: c}",
         "inputMapping": {"a": "outputs.write", "b": "outputs.write", "c": "outputs.write"}},
    ]})
    started = time.monotonic()
    response = await service.run(slug, {})
    run = response.json()["run"]
    assert run["status"] == "failed", run
    assert time.monotonic() - started < 15
    assert run["error"]["type"] == "payload_too_large"
    assert "limits.max_payload_bytes" in run["error"]["message"]
    client = await connect(service.settings, "dev")
    handle = client.get_workflow_handle(run["id"])
    for _ in range(50):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
