"""The Temporal UI's workflow list says which workflow, version and trigger each run is."""

from __future__ import annotations

import asyncio

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow

from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.triggers_support import echo


async def _labels(client: Client, workflow_id: str) -> tuple[str | None, str | None]:
    described = await client.get_workflow_handle(workflow_id).describe()
    return await described.static_summary(), await described.static_details()


async def _listed(client: Client, query: str) -> list[str]:
    for _ in range(100):  # the visibility store takes a moment to list a new workflow
        found = [w.id async for w in client.list_workflows(query)]
        if found:
            return found
        await asyncio.sleep(0.1)
    return []


async def test_runs_children_schedules_and_previews_are_labelled(service: Service) -> None:
    client = await connect(service.settings, "dev")
    child, parent = unique_slug("child"), unique_slug("parent")
    await service.create_workflow(echo(child))
    await service.create_workflow({"id": parent, "name": "Nightly digest", "steps": [
        {"id": "sub", "type": "workflow", "workflowSlug": child,
         "inputMapping": {"topic": "input.topic"}}]})
    await service.http.put(f"/api/workflows/{parent}", json={
        "id": parent, "name": "Nightly digest", "steps": [
            {"id": "sub", "type": "workflow", "workflowSlug": child,
             "inputMapping": {"topic": "input.topic"}}]})
    run = (await service.run(parent, {"topic": "secret-topic"})).json()["run"]
    assert run["status"] == "completed", run

    summary, details = await _labels(client, run["id"])
    assert summary == f"{parent} v2 (api)"
    assert details is not None
    assert "**Nightly digest**" in details
    assert "- version: 2" in details
    assert "secret-topic" not in details  # ids and names only, never the input

    child_id = run["steps"][0]["rendered"]["childRunId"]
    summary, details = await _labels(client, child_id)
    assert summary == f"{child} v1 (workflow)"
    assert details is not None
    assert f"parent run: `{run['id']}`, step `sub`" in details

    trigger = (await service.http.post("/api/triggers", json={
        "workflowSlug": child, "name": "yearly", "type": "scheduled",
        "config": {"cronExpressions": ["0 0 1 1 *"]}, "input": {"topic": "t"}})).json()["trigger"]
    try:
        fired = (await service.http.post(f"/api/triggers/{trigger['id']}/trigger")).json()
        for _ in range(100):
            found = await service.http.get(f"/api/workflows/runs/{fired['runId']}")
            if found.status_code == 200 and found.json()["run"]["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        summary, details = await _labels(client, fired["runId"])
        assert summary == f"{child} v1 (scheduled)"
        assert details is not None
        assert f"trigger: scheduled (`{trigger['id']}`)" in details
        schedule = await client.get_schedule_handle(f"pp-trigger-{trigger['id']}").describe()
        action = schedule.info.recent_actions[-1].action
        assert isinstance(action, ScheduleActionExecutionStartWorkflow)
        assert (await _labels(client, action.workflow_id))[0] == f"schedule 'yearly' of {child}"
    finally:
        await service.http.delete(f"/api/triggers/{trigger['id']}")

    preview = await service.http.post(f"/api/workflows/{child}/preview",
                                      json={"input": {"topic": "p"}})
    assert preview.status_code == 200, preview.text
    previews = await _listed(
        client, f'PromptPilotTrigger="preview" AND PromptPilotSlug="{child}"')
    assert len(previews) == 1
    summary, details = await _labels(client, previews[0])
    assert summary == f"{child} v1 (preview)"
    assert details is not None
    assert "a preview" in details
    runs = await _listed(client, f'PromptPilotTrigger!="preview" AND PromptPilotSlug="{child}"')
    assert previews[0] not in runs
