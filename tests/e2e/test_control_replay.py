"""A workflow using every step kind: replays deterministically, previews, and reruns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.worker import Replayer

from promptpilot.temporal import connect, data_converter
from promptpilot.worker_build import workflow_runner
from tests.conftest import Service, unique_slug
from tests.fakes.llm_server import FakeLlmServer
from workflows.interpreter import InterpreterWorkflow
from workflows.map_batch import MapBatchWorkflow

HISTORIES = Path(__file__).parent.parent / "histories"
RECORDED = HISTORIES / "every_kind_completed.json"


def every_kind(slug: str, child: str, prompt: str) -> dict[str, Any]:
    return {"id": slug, "name": "every kind",
            "variables": [{"name": "topics", "type": "array", "required": True,
                           "sampleValue": ["a", "b"]}],
            "steps": [
                {"id": "intro", "type": "llm", "model": "openai/gpt-4o-mini", "promptId": prompt,
                 "inputMapping": {"topic": "input.topics.0"}},
                {"id": "route", "type": "condition", "expression": "length(input.topics) > `1`",
                 "else": "single"},
                {"id": "fan", "type": "parallel", "branches": [
                    [{"id": "left", "type": "transform", "expression": "`1`"}],
                    [{"id": "right", "type": "workflow", "workflowSlug": child,
                      "inputMapping": {"topic": "input.topics.1"}}]]},
                {"id": "single", "type": "transform", "when": "`false`"},
                {"id": "each", "type": "map", "items": "input.topics", "batchSize": 1,
                 "steps": [{"id": "upper", "type": "transform", "expression": "{t: item}",
                            "inputMapping": {"item": "input.item"}}]},
                {"id": "ok", "type": "approval", "timeoutSeconds": 0.5, "onTimeout": "approve"},
                {"id": "final", "type": "transform",
                 "inputMapping": {"each": "outputs.each", "fan": "outputs.fan",
                                  "single": "outputs.single"}},
            ]}


async def _setup(service: Service) -> str:
    child, prompt, slug = unique_slug("child"), unique_slug("prompt"), unique_slug("every")
    await service.http.post("/api/prompts", json={"id": prompt, "name": "p",
                                                  "promptUser": "Intro {{topic}}"})
    await service.create_workflow({"id": child, "name": "child", "steps": [
        {"id": "echo", "type": "transform", "inputMapping": {"t": "input.topic"}}],
        "variables": [{"name": "topic", "type": "string"}]})
    await service.create_workflow(every_kind(slug, child, prompt))
    return slug


async def test_every_kind_runs_replays_previews_and_reruns(
    service: Service, llm: FakeLlmServer
) -> None:
    slug = await _setup(service)

    run = (await service.run(slug, {"topics": ["x", "y"]})).json()["run"]

    assert run["status"] == "completed", run.get("error")
    assert run["outputJson"] == {"each": [{"t": "x"}, {"t": "y"}],
                                 "fan": [1, {"t": "y"}], "single": None}
    statuses = {s["stepId"]: s["status"] for s in run["steps"]}
    assert statuses["single"] == "skipped"
    assert statuses["left"] == statuses["right"] == "completed"

    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    replayer = Replayer(workflows=[InterpreterWorkflow, MapBatchWorkflow],
                        workflow_runner=workflow_runner(),
                        data_converter=data_converter(service.settings))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    if not RECORDED.exists():
        # Record once: later changes must keep replaying it (test_replay replays every file).
        RECORDED.write_text(history.to_json())

    # A rerun from a step after the condition reuses it and the skipped step keeps its status.
    rerun = (await service.http.post(f"/api/workflows/runs/{run['id']}/rerun",
                                     json={"fromStepId": "each"})).json()["run"]
    assert rerun["status"] == "completed", rerun.get("error")
    statuses = {s["stepId"]: s["status"] for s in rerun["steps"]}
    assert (statuses["route"], statuses["fan"], statuses["left"]) == ("reused",) * 3
    assert statuses["single"] == "skipped"
    assert rerun["outputJson"] == run["outputJson"]

    # The preview runs the same kinds with the mirror off (approvals approve at once).
    preview = (await service.http.post(f"/api/workflows/{slug}/preview",
                                       json={"useSampleData": True})).json()["preview"]
    assert preview["status"] == "completed", preview
    assert preview["output"]["each"] == [{"t": "a"}, {"t": "b"}]
