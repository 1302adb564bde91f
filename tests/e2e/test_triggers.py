"""Triggers end to end: schedules on the real Temporal dev server, manual and api execution,
metrics and event triggers, with the mirror in the real Postgres."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.service import RPCError

from api.schedules import schedule_id
from promptpilot.temporal import connect
from tests.conftest import Service, unique_slug
from tests.triggers_support import echo, runs_of, wait_runs


async def _create(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    response = await service.http.post("/api/triggers", json=body)
    assert response.status_code == 201, response.text
    trigger: dict[str, Any] = response.json()["trigger"]
    return trigger


async def test_schedule_fires_pauses_triggers_backfills_and_deletes(service: Service) -> None:
    slug = unique_slug("sched")
    await service.create_workflow(echo(slug))
    trigger = await _create(service, {
        "workflowSlug": slug, "name": "every 2s", "type": "scheduled",
        "config": {"intervals": [{"everySeconds": 2}]}, "input": {"topic": "cron"}})
    try:
        # Runs start from the schedule and reach the mirror with trigger `scheduled`.
        fired = await wait_runs(service, slug, 2, trigger="scheduled", within=20)
        assert all(r["inputJson"] == {"topic": "cron"} for r in fired)
        assert all(r["outputJson"] == {"topic": "cron"} for r in fired)
        detail = (await service.http.get(f"/api/triggers/{trigger['id']}")).json()["trigger"]
        assert detail["schedule"]["paused"] is False
        assert len(detail["schedule"]["nextFireTimes"]) == 5
        assert detail["metrics"]["byStatus"].get("completed", 0) >= 2
        assert detail["metrics"]["lastRuns"][0]["durationMs"] is not None

        # Pause stops them.
        paused = await service.http.post(f"/api/triggers/{trigger['id']}/pause",
                                         json={"note": "maintenance"})
        assert paused.status_code == 200, paused.text
        assert paused.json()["schedule"] == {**paused.json()["schedule"], "paused": True,
                                             "note": "maintenance"}
        await asyncio.sleep(1.0)  # a fire already under way may still land
        settled = len(await runs_of(service, slug))
        await asyncio.sleep(4.5)
        assert len(await runs_of(service, slug)) == settled

        # Trigger now starts exactly one, even while paused.
        now = await service.http.post(f"/api/triggers/{trigger['id']}/trigger")
        assert now.status_code == 202, now.text
        await wait_runs(service, slug, settled + 1, trigger="scheduled", within=15)
        await asyncio.sleep(1.0)
        assert len(await runs_of(service, slug)) == settled + 1

        # Backfill a past 10 s window: every 2 s fires 5 times (odd-second bounds, no ties).
        start = datetime.fromtimestamp(math.floor(time.time() / 2) * 2 - 120 + 1, UTC)
        backfill = await service.http.post(
            f"/api/triggers/{trigger['id']}/backfill",
            json={"startAt": start.isoformat(), "endAt": (start + timedelta(seconds=10))
                  .isoformat()})
        assert backfill.status_code == 202, backfill.text
        await wait_runs(service, slug, settled + 6, trigger="scheduled", within=20)
        await asyncio.sleep(1.0)
        assert len(await runs_of(service, slug)) == settled + 6
    finally:
        deleted = await service.http.delete(f"/api/triggers/{trigger['id']}")
    assert deleted.status_code == 204
    client = await connect(service.settings, "dev")
    try:
        await client.get_schedule_handle(schedule_id(trigger["id"])).describe()
        raise AssertionError("the schedule outlived its trigger")
    except RPCError:
        pass
    assert (await service.http.get(f"/api/triggers/{trigger['id']}")).status_code == 404


async def test_schedule_resolves_the_latest_version_when_it_fires(service: Service) -> None:
    slug = unique_slug("latest")
    await service.create_workflow(echo(slug))
    trigger = await _create(service, {
        "workflowSlug": slug, "name": "nightly", "type": "scheduled",
        "config": {"cronExpressions": ["0 3 * * *"], "timezone": "Europe/Berlin"},
        "input": {"topic": "v"}})
    try:
        changed = echo(slug)
        changed["steps"][0]["expression"] = "{topic: topic, v: `2`}"
        assert (await service.http.put(f"/api/workflows/{slug}", json=changed)).status_code == 200
        assert (await service.http.post(f"/api/triggers/{trigger['id']}/trigger")).status_code \
            == 202
        run = (await wait_runs(service, slug, 1, within=15))[0]
        assert run["workflowVersion"] == 2
        assert run["outputJson"] == {"topic": "v", "v": 2}
        assert run["trigger"] == "scheduled"
    finally:
        await service.http.delete(f"/api/triggers/{trigger['id']}")


async def test_bad_schedule_config_is_refused_with_pointers(service: Service) -> None:
    slug = unique_slug("badcron")
    await service.create_workflow(echo(slug))
    response = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "x", "type": "scheduled", "input": {"topic": "t"},
        "config": {"cronExpressions": ["every day"], "timezone": "Nowhere/City"}})
    assert response.status_code == 422
    pointers = {p["pointer"] for p in response.json()["error"]["problems"]}
    assert pointers == {"/config/cronExpressions/0", "/config/timezone"}


async def test_manual_and_api_triggers_execute_with_the_right_keys(service: Service) -> None:
    slug = unique_slug("exec")
    await service.create_workflow(echo(slug))
    manual = await _create(service, {"workflowSlug": slug, "name": "button", "type": "manual",
                                     "input": {"topic": "m"}})
    api = await _create(service, {"workflowSlug": slug, "name": "ci", "type": "api",
                                  "input": {"topic": "a"}})
    assert api["apiKey"].startswith("ppt_")
    shown = (await service.http.get(f"/api/triggers/{api['id']}")).json()["trigger"]
    assert shown.get("apiKey") is None

    started = await service.http.post(f"/api/triggers/{manual['id']}/execute")
    assert started.status_code == 202, started.text
    # An api trigger refuses environment keys and accepts its own key.
    refused = await service.http.post(f"/api/triggers/{api['id']}/execute")
    assert refused.status_code == 403
    wrong = await service.http.post(f"/api/triggers/{manual['id']}/execute",
                                    headers={"Authorization": f"Bearer {api['apiKey']}"})
    assert wrong.status_code == 401
    by_key = await service.http.post(f"/api/triggers/{api['id']}/execute",
                                     headers={"Authorization": f"Bearer {api['apiKey']}"},
                                     json={"input": {"topic": "override"}})
    assert by_key.status_code == 202, by_key.text

    runs = await wait_runs(service, slug, 2, within=15)
    by_trigger = {r["trigger"]: r for r in runs}
    assert by_trigger["manual"]["inputJson"] == {"topic": "m"}
    assert by_trigger["api"]["inputJson"] == {"topic": "override"}
    assert {r["id"] for r in runs} == {started.json()["runId"], by_key.json()["runId"]}
    metrics = (await service.http.get(f"/api/triggers/{api['id']}")).json()["trigger"]["metrics"]
    assert metrics["total"] == 1
    assert metrics["byStatus"] == {"completed": 1}
    assert metrics["lastRuns"][0]["id"] == by_key.json()["runId"]


async def test_event_trigger_starts_b_with_a_output(service: Service) -> None:
    source, target = unique_slug("a"), unique_slug("b")
    await service.create_workflow(echo(source))
    await service.create_workflow(echo(target))
    trigger = await _create(service, {
        "workflowSlug": target, "name": "after a", "type": "event",
        "config": {"sourceWorkflowSlug": source, "onStatus": ["completed"],
                   "filter": "output.topic != 'skip'",
                   "inputMapping": {"topic": "output.topic"}}})
    assert (await service.run(source, {"topic": "skip"})).status_code == 200
    ran = await service.run(source, {"topic": "from-a"})
    assert ran.status_code == 200
    runs = await wait_runs(service, target, 1, within=15)
    await asyncio.sleep(1.0)
    runs = await runs_of(service, target)
    assert len(runs) == 1  # the filter kept the first run of A from firing
    assert runs[0]["trigger"] == "event"
    assert runs[0]["inputJson"] == {"topic": "from-a"}
    detail = (await service.http.get(f"/api/triggers/{trigger['id']}")).json()["trigger"]
    assert detail["metrics"]["lastRuns"][0]["id"] == runs[0]["id"]
