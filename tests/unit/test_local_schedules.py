"""``batchrecs local up`` fires routes' schedules on a scaled clock: the expressions are evaluated as
EventBridge Scheduler documents them (six cron fields, day-of-week 1-7 = SUN-SAT, a time zone)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from batchrecs_local.schedules import NotEmulated, ScheduleRunner, next_fire

MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "zone", "expected"),
    [
        ("rate(7 days)", "UTC", datetime(2026, 12, 14, 12, 0, tzinfo=UTC)),
        ("rate(1 hour)", "UTC", datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
        ("cron(0 6 ? * MON *)", "UTC", datetime(2026, 12, 14, 6, 0, tzinfo=UTC)),  # next Monday 06:00
        ("cron(0 6 ? * 2 *)", "UTC", datetime(2026, 12, 14, 6, 0, tzinfo=UTC)),  # 2 is MON
        (
            "cron(0 6 ? * MON *)",
            "Europe/Paris",
            datetime(2026, 12, 14, 5, 0, tzinfo=UTC),
        ),  # UTC+1 in December
        ("cron(30 12 * * ? *)", "UTC", datetime(2026, 12, 7, 12, 30, tzinfo=UTC)),
        ("cron(0/15 * * * ? *)", "UTC", datetime(2026, 12, 7, 12, 15, tzinfo=UTC)),
        ("cron(0 8 1 JAN,JUL ? *)", "UTC", datetime(2027, 1, 1, 8, 0, tzinfo=UTC)),
        ("cron(0 9 ? * MON-FRI *)", "UTC", datetime(2026, 12, 8, 9, 0, tzinfo=UTC)),
    ],
)
def test_next_fire_follows_the_schedulers_expressions(expression: str, zone: str, expected: datetime) -> None:
    assert next_fire(expression, MONDAY_NOON, zone) == expected


@pytest.mark.parametrize(
    "expression", ["cron(0 6 L * ? *)", "cron(0 6 ? * 6#3 *)", "every monday", "cron(0 6 * *)"]
)
def test_what_is_not_emulated_says_so(expression: str) -> None:
    with pytest.raises(NotEmulated):
        next_fire(expression, MONDAY_NOON)


def test_the_runner_fires_each_due_time_once_on_the_scaled_clock_and_follows_changes() -> None:
    real = [0.0]
    schedules = {"weekly": {"ScheduleExpression": "rate(7 days)", "ScheduleExpressionTimezone": "UTC"}}
    fired: list[tuple[str, str]] = []
    runner = ScheduleRunner(
        lambda: dict(schedules),
        lambda route, at: fired.append((route, at)),
        3600.0,
        lambda: real[0],
        MONDAY_NOON,
    )
    assert runner.step() == []  # seen now: due a week later
    real[0] = 7 * 24 - 1  # 167 real seconds: a week less an hour of scheduled time
    assert runner.step() == []
    real[0] = 7 * 24 * 2 + 1  # two weeks: the two due times, once each, in order
    assert runner.step() == [("weekly", "2026-12-14T12:00:00Z"), ("weekly", "2026-12-21T12:00:00Z")]
    assert runner.step() == [] and len(fired) == 2
    del schedules["weekly"]  # the monitor deleted it: nothing more
    real[0] = 7 * 24 * 5
    assert runner.step() == []
