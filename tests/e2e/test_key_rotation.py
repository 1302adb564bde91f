"""Rotating the payload key: a run started under the old key completes under the new one, and
its history, now written with both, replays."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from payloads.codec import KEY_ID, new_key
from promptpilot.settings import Settings
from promptpilot.temporal import connect, data_converter
from promptpilot.worker_build import workflow_runner
from tests.conftest import unique_slug
from tests.e2e.test_approval import gated
from tests.payload_support import history_payloads, serving
from workflows.interpreter import InterpreterWorkflow

NEW_KEY = SecretStr(new_key())


async def _waiting(http: httpx.AsyncClient, run_id: str) -> None:
    for _ in range(100):
        run = (await http.get(f"/api/workflows/runs/{run_id}")).json()["run"]
        if any(s["stepId"] == "review" and s["status"] == "waiting" for s in run["steps"]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the approval step never waited")


def key_ids(history: WorkflowHistory) -> set[str]:
    """The key ids named by the encrypted payloads of a history."""
    return {p.metadata[KEY_ID].decode() for p in history_payloads(history) if KEY_ID in p.metadata}


async def test_run_started_under_key_1_completes_after_rotation_to_key_2(
        settings: Settings, engine: AsyncEngine) -> None:
    slug = unique_slug("rotate")
    async with serving(settings) as http:
        assert (await http.post("/api/workflows", json=gated(slug))).status_code == 201
        started = await http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                  json={"input": {}})
        run_id = started.json()["run"]["id"]
        await _waiting(http, run_id)

    # Rotation: key 2 joins the ring and encrypts from now on; key 1 stays to decrypt.
    rotated = settings.model_copy(deep=True)
    rotated.payloads.encryption_keys["test-2"] = NEW_KEY
    rotated.payloads.encryption_key_id = "test-2"
    async with serving(rotated) as http:  # a fresh worker: it replays key-1 history first
        approved = await http.post(f"/api/workflows/runs/{run_id}/steps/review/approve",
                                   json={"comment": "after rotation"})
        assert approved.status_code == 200, approved.text
        run = approved.json()["run"]
    assert run["status"] == "completed", run
    assert run["outputJson"]["ok"]["comment"] == "after rotation"

    client = await connect(rotated, "dev")
    history = await client.get_workflow_handle(run_id).fetch_history()
    assert key_ids(history) == {"test-1", "test-2"}
    result = await Replayer(workflows=[InterpreterWorkflow], workflow_runner=workflow_runner(),
                            data_converter=data_converter(rotated)).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure

    # Without key 1 the older half of the history cannot be read: it fails, loudly.
    only_new = rotated.model_copy(deep=True)
    del only_new.payloads.encryption_keys["test-1"]
    without = await Replayer(workflows=[InterpreterWorkflow], workflow_runner=workflow_runner(),
                             data_converter=data_converter(only_new)).replay_workflow(
        history, raise_on_replay_failure=False)
    assert without.replay_failure is not None
    # (the failure's message is encrypted too; its type says what happened)
    assert "PayloadDecryptError" in str(without.replay_failure)
