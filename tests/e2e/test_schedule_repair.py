"""A scheduled trigger whose Temporal schedule is gone (deleted in the Temporal UI) is made
whole again by its next control, and one whose stored config no longer reads answers a 409
that says how to mend it, never a 5xx."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payload
from temporalio.client import ScheduleActionStartWorkflow, ScheduleHandle
from temporalio.service import RPCError, RPCStatusCode

from api.schedules import schedule_id
from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.triggers_support import echo

YEARLY = {"cronExpressions": ["0 0 1 1 *"]}  # never fires during a test


async def _scheduled(service: Service) -> tuple[str, ScheduleHandle]:
    slug = unique_slug("repair")
    await service.create_workflow(echo(slug))
    created = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "yearly", "type": "scheduled", "config": YEARLY,
        "input": {"topic": "t"}})
    assert created.status_code == 201, created.text
    trigger_id = str(created.json()["trigger"]["id"])
    client = await connect(service.settings, "dev")
    return trigger_id, client.get_schedule_handle(schedule_id(trigger_id))


async def _yearly(handle: ScheduleHandle) -> bool:
    """Temporal holds the trigger's yearly spec: its next fire is at a new year."""
    upcoming = (await handle.describe()).info.next_action_times
    return bool(upcoming) and all((t.month, t.day, t.hour) == (1, 1, 0) for t in upcoming)


async def _gone(handle: ScheduleHandle) -> None:
    """Delete the schedule in Temporal, as an operator in the Temporal UI would."""
    await handle.delete()
    with pytest.raises(RPCError) as missing:
        await handle.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_a_lost_schedule_is_made_again_by_the_next_control(service: Service) -> None:
    trigger_id, handle = await _scheduled(service)
    await _gone(handle)
    shown = (await service.http.get(f"/api/triggers/{trigger_id}")).json()["trigger"]
    assert shown["schedule"]["exists"] is False
    assert len(shown["schedule"]["nextFireTimes"]) == 5  # from the trigger's own config

    paused = await service.http.post(f"/api/triggers/{trigger_id}/pause",
                                     json={"note": "after the UI"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["schedule"]["exists"] is True
    assert paused.json()["schedule"]["paused"] is True
    assert (await handle.describe()).schedule.state.note == "after the UI"

    await _gone(handle)
    unpaused = await service.http.post(f"/api/triggers/{trigger_id}/unpause")
    assert unpaused.status_code == 200, unpaused.text
    assert (await handle.describe()).schedule.state.paused is False

    await _gone(handle)
    renamed = await service.http.put(f"/api/triggers/{trigger_id}", json={"name": "renamed"})
    assert renamed.status_code == 200, renamed.text
    action = (await handle.describe()).schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert isinstance(action.static_summary, Payload)  # sealed, as every payload: open it
    client = await connect(service.settings, "dev")
    [summary] = await client.data_converter.decode([action.static_summary])
    assert summary.startswith("schedule 'renamed' of repair-"), summary

    await _gone(handle)
    now = await service.http.post(f"/api/triggers/{trigger_id}/trigger")
    assert now.status_code == 202, now.text
    assert now.json()["runId"], now.json()

    await _gone(handle)
    start = datetime(2020, 12, 31, tzinfo=UTC)
    backfill = await service.http.post(f"/api/triggers/{trigger_id}/backfill", json={
        "startAt": start.isoformat(), "endAt": (start + timedelta(days=2)).isoformat()})
    assert backfill.status_code == 202, backfill.text
    assert await _yearly(handle)

    deleted = await service.http.delete(f"/api/triggers/{trigger_id}")
    assert deleted.status_code == 204
    with pytest.raises(RPCError):
        await handle.describe()


async def _store_config(engine: AsyncEngine, trigger_id: str, config: dict[str, Any]) -> None:
    """A config as an older release may have stored it, before a change to what one holds."""
    async with engine.begin() as db:
        await db.execute(text("UPDATE triggers SET config = CAST(:c AS jsonb) WHERE id = :id"),
                         {"c": json.dumps(config), "id": uuid.UUID(trigger_id)})


async def test_an_unreadable_stored_config_is_a_409_until_a_new_one_is_sent(
    service: Service, engine: AsyncEngine,
) -> None:
    trigger_id, handle = await _scheduled(service)
    await _store_config(engine, trigger_id, {"cron": "* * * * *"})
    shown = await service.http.get(f"/api/triggers/{trigger_id}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["trigger"]["config"] == {"cron": "* * * * *"}

    start = datetime(2020, 12, 31, tzinfo=UTC)
    window = {"startAt": start.isoformat(), "endAt": (start + timedelta(days=2)).isoformat()}
    backfill = await service.http.post(f"/api/triggers/{trigger_id}/backfill", json=window)
    assert backfill.status_code == 409, backfill.text
    error = backfill.json()["error"]
    assert error["code"] == "trigger_config_unreadable"
    assert "PUT /api/triggers/{id}" in error["message"]
    assert {p["pointer"] for p in error["problems"]} >= {"/config/cron"}

    await _gone(handle)  # nothing to make the schedule again from
    renamed = await service.http.put(f"/api/triggers/{trigger_id}", json={"name": "x"})
    assert renamed.status_code == 409, renamed.text
    assert renamed.json()["error"]["code"] == "trigger_config_unreadable"
    assert (await service.http.get(f"/api/triggers/{trigger_id}")).json()["trigger"][
        "name"] == "yearly"  # the refused change is not half-saved

    mended = await service.http.put(f"/api/triggers/{trigger_id}", json={"config": YEARLY})
    assert mended.status_code == 200, mended.text
    assert await _yearly(handle)
    again = await service.http.post(f"/api/triggers/{trigger_id}/backfill", json=window)
    assert again.status_code == 202, again.text
