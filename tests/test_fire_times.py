"""Next fire times of schedule configs, computed from the original cron text (no Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime

from api.schedules import config_problems, next_fire_times
from schema.triggers import IntervalSpec, ScheduleConfig


def _iso(times: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for t in times]


def test_cron_in_a_time_zone_follows_spring_forward() -> None:
    # Europe/Berlin moves from UTC+1 to UTC+2 on 2027-03-28.
    config = ScheduleConfig(cron_expressions=["30 9 * * *"], timezone="Europe/Berlin")
    times = next_fire_times(config, datetime(2027, 3, 26, 12, tzinfo=UTC), 3)
    assert _iso(times) == ["2027-03-27T08:30", "2027-03-28T07:30", "2027-03-29T07:30"]


def test_cron_in_a_time_zone_follows_fall_back() -> None:
    # America/New_York moves from UTC-4 to UTC-5 on 2027-11-07.
    config = ScheduleConfig(cron_expressions=["0 8 * * 1-5"], timezone="America/New_York")
    times = next_fire_times(config, datetime(2027, 11, 4, 0, tzinfo=UTC), 3)
    assert _iso(times) == ["2027-11-04T12:00", "2027-11-05T12:00", "2027-11-08T13:00"]


def test_a_local_time_inside_the_spring_forward_gap_does_not_fire() -> None:
    # 02:30 does not exist in Berlin on 2027-03-28; Temporal skips it (checked on the dev server).
    config = ScheduleConfig(cron_expressions=["30 2 * * *"], timezone="Europe/Berlin")
    times = next_fire_times(config, datetime(2027, 3, 26, 0, tzinfo=UTC), 3)
    assert _iso(times) == ["2027-03-26T01:30", "2027-03-27T01:30", "2027-03-29T00:30"]


def test_intervals_are_epoch_aligned_and_merge_with_crons() -> None:
    config = ScheduleConfig(intervals=[IntervalSpec(every_seconds=3600, offset_seconds=600)],
                            cron_expressions=["0 12 * * *"])
    times = next_fire_times(config, datetime(2027, 1, 1, 10, 30, tzinfo=UTC), 4)
    assert _iso(times) == ["2027-01-01T11:10", "2027-01-01T12:00", "2027-01-01T12:10",
                           "2027-01-01T13:10"]


def test_bad_cron_and_zone_are_reported_with_pointers() -> None:
    config = ScheduleConfig(cron_expressions=["61 * * * *"], timezone="Mars/Olympus")
    problems = config_problems(config)
    assert [p.pointer for p in problems] == ["/config/cronExpressions/0", "/config/timezone"]


def test_a_local_time_in_the_fall_back_hour_fires_twice() -> None:
    # 01:30 happens twice in New York on 2027-11-07 (EDT, then EST); Temporal fires both
    # (tests/e2e/test_fire_times_temporal.py compares the two on the dev server).
    config = ScheduleConfig(cron_expressions=["30 1 * * *"], timezone="America/New_York")
    times = next_fire_times(config, datetime(2027, 11, 6, 0, tzinfo=UTC), 4)
    assert _iso(times) == ["2027-11-06T05:30", "2027-11-07T05:30", "2027-11-07T06:30",
                           "2027-11-08T06:30"]


def test_the_fall_back_hour_s_second_pass_comes_in_time_order() -> None:
    # Every 20 minutes from 01:00: the EDT hour, then the same hour again in EST.
    config = ScheduleConfig(cron_expressions=["*/20 1 * * *"], timezone="America/New_York")
    times = next_fire_times(config, datetime(2027, 11, 7, 4, tzinfo=UTC), 4)
    assert _iso(times) == ["2027-11-07T05:00", "2027-11-07T05:20", "2027-11-07T05:40",
                           "2027-11-07T06:00"]


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    # Temporal reads `0 9 13 * 5` as Friday the 13th, not the 13th or any Friday.
    config = ScheduleConfig(cron_expressions=["0 9 13 * 5"])
    times = next_fire_times(config, datetime(2026, 12, 1, tzinfo=UTC), 2)
    assert _iso(times) == ["2027-08-13T09:00", "2028-10-13T09:00"]
    never = ScheduleConfig(cron_expressions=["0 0 30 2 *"])
    [problem] = config_problems(never)
    assert problem.pointer == "/config/cronExpressions/0"
    assert "never fires" in problem.message


def test_cron_extensions_temporal_does_not_read_are_refused() -> None:
    # The dev server refuses L, W and ? ("DayOfMonth is not in range") and reads MON#2 as
    # every Monday; names holding those letters (JUL, WED) are fine.
    for expr in ("0 0 L * *", "0 0 ? * MON", "0 0 15W * *", "0 0 * * MON#2"):
        [problem] = config_problems(ScheduleConfig(cron_expressions=[expr]))
        assert problem.pointer == "/config/cronExpressions/0", expr
        assert "L, W, ? or #" in problem.message
    assert config_problems(ScheduleConfig(cron_expressions=["0 0 * JUL WED"])) == []
