"""Schedules on the dev server: fire times as Temporal has them, and "trigger now"'s run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest

from api.schedules import next_fire_times, schedule_id
from promptpilot.temporal import connect
from schema.triggers import ScheduleConfig
from tests.conftest import Service, unique_slug
from tests.triggers_support import echo


async def _temporal_times(service: Service, trigger_id: str, start: datetime,
                          end: datetime) -> list[datetime]:
    client = await connect(service.settings, "dev")
    begin, until = Timestamp(), Timestamp()
    begin.FromDatetime(start)
    until.FromDatetime(end)
    answer = await client.workflow_service.list_schedule_matching_times(
        ListScheduleMatchingTimesRequest(namespace=client.namespace,
                                         schedule_id=schedule_id(trigger_id),
                                         start_time=begin, end_time=until))
    return [t.ToDatetime(tzinfo=UTC) for t in answer.start_time]


async def _scheduled(service: Service, config: dict[str, Any], *, enabled: bool = False,
                     slug: str | None = None) -> str:
    if slug is None:
        slug = unique_slug("fires")
        await service.create_workflow(echo(slug))
    created = await service.http.post("/api/triggers", json={
        "workflowSlug": slug, "name": "dst", "type": "scheduled", "enabled": enabled,
        "config": config, "input": {"topic": "t"}})
    assert created.status_code == 201, created.text
    return str(created.json()["trigger"]["id"])


async def test_preview_matches_temporal_across_daylight_saving(service: Service) -> None:
    cases: list[tuple[dict[str, Any], datetime, datetime]] = [
        ({"cronExpressions": ["30 1 * * *"], "timezone": "America/New_York"},
         datetime(2027, 11, 5, tzinfo=UTC), datetime(2027, 11, 10, tzinfo=UTC)),
        ({"cronExpressions": ["*/20 1 * * *"], "timezone": "America/New_York"},
         datetime(2027, 11, 6, 12, tzinfo=UTC), datetime(2027, 11, 8, 12, tzinfo=UTC)),
        ({"cronExpressions": ["30 2 * * *"], "timezone": "Europe/Berlin"},
         datetime(2027, 3, 26, tzinfo=UTC), datetime(2027, 3, 30, tzinfo=UTC)),
        # Day of month and day of week both given: either one fires (as cron has it).
        ({"cronExpressions": ["0 9 1 * 1", "45 1 * * 0"], "timezone": "America/New_York"},
         datetime(2027, 10, 25, tzinfo=UTC), datetime(2027, 11, 20, tzinfo=UTC)),
        ({"cronExpressions": ["0 1 * * *"], "timezone": "UTC",
          "intervals": [{"everySeconds": 5400, "offsetSeconds": 60}]},
         datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 2, tzinfo=UTC)),
    ]
    for config, start, end in cases:
        trigger_id = await _scheduled(service, config)
        temporal = await _temporal_times(service, trigger_id, start, end)
        preview = [t for t in next_fire_times(ScheduleConfig.model_validate(config), start, 50)
                   if t < end]
        assert preview == temporal, config


async def test_a_schedule_shows_the_fire_times_temporal_will_use(service: Service) -> None:
    # Jitter moves each fire by a random amount the preview cannot know: Temporal's own
    # times are shown once the schedule exists.
    config = {"cronExpressions": ["0 * * * *"], "jitterSeconds": 1800}
    trigger_id = await _scheduled(service, config, enabled=True)
    try:
        detail = (await service.http.get(f"/api/triggers/{trigger_id}")).json()["trigger"]
        schedule = detail["schedule"]
        assert len(schedule["nextFireTimes"]) == 5
        assert schedule["nextFireTimes"] == schedule["temporalNextActionTimes"]
        nominal = next_fire_times(ScheduleConfig.model_validate(config), datetime.now(UTC))
        assert [datetime.fromisoformat(t) for t in schedule["nextFireTimes"]] != nominal
    finally:
        await service.http.delete(f"/api/triggers/{trigger_id}")


async def test_trigger_now_answers_with_the_run_it_started(service: Service) -> None:
    slug = unique_slug("now")
    await service.create_workflow(echo(slug))
    trigger_id = await _scheduled(service, {"cronExpressions": ["0 0 1 1 *"]}, enabled=True,
                                  slug=slug)
    try:
        now = await service.http.post(f"/api/triggers/{trigger_id}/trigger")
        assert now.status_code == 202, now.text
        run_id = now.json()["runId"]
        assert run_id
        for _ in range(200):
            found = await service.http.get(f"/api/workflows/runs/{run_id}")
            if found.status_code == 200 and found.json()["run"]["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        run = found.json()["run"]
        assert run["status"] == "completed", run
        assert run["trigger"] == "scheduled"
        assert run["workflowSlug"] == slug
        runs = (await service.http.get(f"/api/workflows/{slug}/runs")).json()["runs"]
        assert [r["id"] for r in runs] == [run_id]
    finally:
        await service.http.delete(f"/api/triggers/{trigger_id}")
