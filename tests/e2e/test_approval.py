"""Approval steps: waiting is visible, approve/reject through the API, and timeouts."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug


def gated(slug: str, **approval: Any) -> dict[str, Any]:
    return {"id": slug, "name": "gated", "steps": [
        {"id": "draft", "type": "transform", "expression": "{text: 'hello'}"},
        {"id": "review", "type": "approval", "message": "Publish {{outputs.draft.text}}?",
         **approval},
        {"id": "publish", "type": "transform", "inputMapping": {"ok": "outputs.review"}},
    ]}


async def _waiting(service: Service, run_id: str) -> dict[str, Any]:
    for _ in range(100):
        run: dict[str, Any] = (await service.http.get(f"/api/workflows/runs/{run_id}")).json()[
            "run"]
        review = [s for s in run["steps"] if s["stepId"] == "review"]
        if review and review[0]["status"] == "waiting":
            return run
        await asyncio.sleep(0.1)
    raise AssertionError("the approval step never waited")


async def _start(service: Service, slug: str) -> str:
    response = await service.http.post(f"/api/workflows/{slug}/run", params={"wait": 0},
                                       json={"input": {}})
    assert response.status_code == 202
    run_id: str = response.json()["run"]["id"]
    return run_id


async def test_approved_step_records_who_and_the_run_goes_on(service: Service) -> None:
    slug = unique_slug("appr")
    await service.create_workflow(gated(slug))
    run_id = await _start(service, slug)

    run = await _waiting(service, run_id)
    assert run["status"] == "running"
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert review["rendered"]["message"] == "Publish hello?"
    # The Temporal UI shows what the run waits for (the workflow's current details).
    client = await connect(service.settings, "dev")
    metadata = await client.get_workflow_handle(run_id).query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "waiting for approval of step 'review'" in metadata.current_details

    # Approving a step that is not waiting is refused.
    wrong = await service.http.post(f"/api/workflows/runs/{run_id}/steps/draft/approve",
                                    json={})
    assert wrong.status_code == 409
    response = await service.http.post(f"/api/workflows/runs/{run_id}/steps/review/approve",
                                       json={"comment": "ship it"})

    assert response.status_code == 200, response.text
    run = response.json()["run"]
    assert run["status"] == "completed"
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert review["status"] == "completed"
    output = review["outputJson"]
    assert (output["decision"], output["comment"], output["timedOut"]) == (
        "approved", "ship it", False)
    assert output["by"]["name"] == "test dev key"
    uuid.UUID(output["by"]["keyId"])
    assert output["at"]
    assert run["outputJson"]["ok"]["decision"] == "approved"
    again = await service.http.post(f"/api/workflows/runs/{run_id}/steps/review/reject",
                                    json={})
    assert again.status_code == 409


async def test_rejected_step_fails_the_run(service: Service) -> None:
    slug = unique_slug("appr")
    await service.create_workflow(gated(slug))
    run_id = await _start(service, slug)
    await _waiting(service, run_id)

    response = await service.http.post(f"/api/workflows/runs/{run_id}/steps/review/reject",
                                       json={"comment": "not yet"})

    run = response.json()["run"]
    assert run["status"] == "failed"
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert review["status"] == "failed"
    assert review["error"]["type"] == "approval_rejected"
    assert "not yet" in review["error"]["message"]
    assert review["outputJson"]["decision"] == "rejected"
    assert "publish" not in [s["stepId"] for s in run["steps"]]


async def test_approval_timeouts_follow_on_timeout(service: Service) -> None:
    failing, approving = unique_slug("appr"), unique_slug("appr")
    await service.create_workflow(gated(failing, timeoutSeconds=1))
    await service.create_workflow(gated(approving, timeoutSeconds=1, onTimeout="approve"))

    failed, approved = await asyncio.gather(service.run(failing, {}), service.run(approving, {}))

    run = failed.json()["run"]
    assert run["status"] == "failed"
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert (review["status"], review["error"]["type"]) == ("failed", "approval_timeout")
    run = approved.json()["run"]
    assert run["status"] == "completed"
    review = next(s for s in run["steps"] if s["stepId"] == "review")
    assert review["outputJson"]["decision"] == "approved"
    assert review["outputJson"]["timedOut"] is True
