"""A stored version that no longer reads as a definition (written by an older release, or
edited in the database) is a 409 that names the version and its problems wherever it would
be run: a trigger's start or edit. Never a 500, and no run is left."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Service, unique_slug


async def test_an_unreadable_version_is_a_409_naming_its_problems(
        service: Service, engine: AsyncEngine) -> None:
    slug = unique_slug("unreadable")
    workflow = await service.create_workflow({"id": slug, "name": "u", "steps": [
        {"id": "t1", "type": "transform", "inputMapping": {"v": "input.v"}}]})
    trigger = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "by hand", "type": "manual"})
    assert trigger.status_code == 201, trigger.text
    trigger_id = trigger.json()["trigger"]["id"]
    async with engine.begin() as connection:
        await connection.execute(text(
            "UPDATE workflow_versions SET definition = CAST(:d AS jsonb) "
            "WHERE workflow_id = :w"), {"d": json.dumps({"id": slug, "name": "u", "steps": []}),
                                        "w": workflow["id"]})

    # (Versions are immutable, so a process that has read one keeps it: the routes below
    # read the trigger's version from the database each time.)
    answers = [
        await service.http.post(f"/api/triggers/{trigger_id}/execute", json={}),
        await service.http.put(f"/api/triggers/{trigger_id}", json={"pinnedVersion": 1,
                                                                    "versionPolicy": "pinned"}),
    ]
    for answer in answers:
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "definition_unreadable"
        assert error["message"].startswith("version 1 of this workflow no longer reads")
        assert [p["pointer"] for p in error["problems"]] == ["/steps"]
    runs = (await service.http.get("/api/workflows/runs", params={"workflow": slug})).json()
    assert runs["runs"] == []
