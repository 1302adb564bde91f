"""The interpreter is deterministic: recorded histories replay without a nondeterminism error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from promptpilot.settings import Settings
from promptpilot.temporal import connect, data_converter
from promptpilot.worker_build import workflow_runner
from tests.conftest import Service, unique_slug
from tests.definitions import feed_discovery
from tests.fakes.llm_server import FakeLlmServer, ok, status
from workflows.evaluation import EvaluationWorkflow
from workflows.interpreter import InterpreterWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"


def replayer(settings: Settings) -> Replayer:
    """A replayer through the product's converter: the payload codec decrypts the history's
    encrypted payloads and the storage driver resolves its references."""
    return Replayer(workflows=[InterpreterWorkflow, EvaluationWorkflow],
                    workflow_runner=workflow_runner(),
                    data_converter=data_converter(settings))


async def test_live_histories_replay(service: Service, llm: FakeLlmServer) -> None:
    slug = unique_slug("replay")
    await service.create_workflow(feed_discovery(slug))
    llm.enqueue(ok('{"query": "replay"}'), status(400, "no"))
    completed = (await service.run(slug, {"interests": "AI"})).json()["run"]
    failed = (await service.run(slug, {"interests": "AI"})).json()["run"]
    assert (completed["status"], failed["status"]) == ("completed", "failed")

    client = await connect(service.settings, "dev")
    histories = [await client.get_workflow_handle(run["id"]).fetch_history()
                 for run in (completed, failed)]
    for history in histories:
        result = await replayer(service.settings).replay_workflow(
            history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
    if not (HISTORIES / "feed_discovery_completed.json").exists():
        # Record once; later code changes must keep replaying this history.
        HISTORIES.mkdir(exist_ok=True)
        (HISTORIES / "feed_discovery_completed.json").write_text(histories[0].to_json())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_histories_replay(path: Path, settings: Settings) -> None:
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await replayer(settings).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
