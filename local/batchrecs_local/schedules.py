"""Routes' schedules firing on a scaled clock, for ``batchrecs local up``.

EventBridge Scheduler is not emulated as a running service: the monitor makes the schedules (as on AWS),
and this runner reads them from the local Scheduler and fires each when it comes due on a simulated clock
that runs ``scale`` times faster than real time (3,600 by default: a week passes in under three minutes),
through ``LocalCloud.fire_schedule`` (as Scheduler would: the schedule's role invokes its target).

``rate(n unit)`` fires every n units from when the runner first sees the schedule. ``cron(...)`` takes
EventBridge's six fields (minutes hours day-of-month month day-of-week year) with ``*``, ``?``, numbers,
names (JAN-DEC, SUN-SAT; day-of-week 1-7 is SUN-SAT), ranges, lists and ``/`` steps, in the schedule's
time zone; ``L``, ``W`` and ``#`` are not emulated (such a schedule is reported and skipped).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {
    name: i
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], 1
    )
}
_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], 1)}
_SEARCH_MINUTES = 366 * 24 * 60  # a year ahead at most


class NotEmulated(ValueError):
    """A schedule expression this runner cannot evaluate."""


def next_fire(expression: str, after: datetime, timezone: str = "UTC") -> datetime:
    """The first time after ``after`` (aware) the expression fires, in UTC."""
    rate = _RATE.match(expression)
    if rate:
        return after + timedelta(seconds=int(rate.group(1)) * _UNITS[rate.group(2).rstrip("s")])
    if not (expression.startswith("cron(") and expression.endswith(")")):
        raise NotEmulated(f"{expression} is not a rate() or cron() expression")
    fields = expression[5:-1].split()
    if len(fields) != 6:
        raise NotEmulated(f"{expression} does not have six fields")
    minutes, hours, days, months, weekdays, years = (
        _field(fields[0], 0, 59, {}),
        _field(fields[1], 0, 23, {}),
        _field(fields[2], 1, 31, {}),
        _field(fields[3], 1, 12, _MONTHS),
        _field(fields[4], 1, 7, _DAYS),
        _field(fields[5], 1970, 2199, {}),
    )
    zone = ZoneInfo(timezone)
    moment = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(_SEARCH_MINUTES):
        weekday = (moment.isoweekday() % 7) + 1  # SUN=1 ... SAT=7
        if (
            moment.minute in minutes
            and moment.hour in hours
            and moment.day in days
            and moment.month in months
            and weekday in weekdays
            and moment.year in years
        ):
            return moment.astimezone(UTC)
        moment += timedelta(minutes=1)
    raise NotEmulated(f"{expression} does not fire within a year")


def _field(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    if text in ("*", "?"):
        return set(range(low, high + 1))
    values: set[int] = set()
    for part in text.upper().split(","):
        if any(mark in part for mark in ("L", "W", "#")) and not any(name in part for name in names):
            raise NotEmulated(f"cron field {text!r}: L, W and # are not emulated locally")
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = _value(first, names), _value(last, names)
        else:
            start = _value(base, names)
            end = high if step else start
        values.update(range(start, end + 1, int(step) if step else 1))
    return values


def _value(text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise NotEmulated(f"cron value {text!r} is not emulated locally")
    return int(text)


class ScheduleRunner:
    """Fires the group's schedules as they come due on a clock ``scale`` times faster than real time."""

    def __init__(
        self,
        schedules: Callable[[], dict[str, dict[str, Any]]],  # name -> GetSchedule's answer
        fire: Callable[[str, str], object],  # (route, scheduled time ISO) -> fire it
        scale: float = 3600.0,
        real: Callable[[], float] = time.monotonic,
        start: datetime | None = None,
        report: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._schedules = schedules
        self._fire = fire
        self._scale = scale
        self._real = real
        self._real_start = real()
        self._start = start or datetime.now(UTC)
        self._report = report
        self._due: dict[str, tuple[str, datetime]] = {}  # name -> (expression, next fire)
        self._stop = threading.Event()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(self._real() - self._real_start) * self._scale)

    def step(self) -> list[tuple[str, str]]:
        """Fire whatever came due since the last step; what was fired (route, scheduled time)."""
        now, fired = self.now(), []
        current = self._schedules()
        for name in set(self._due) - set(current):
            del self._due[name]
        for name, schedule in current.items():
            expression, zone = (
                schedule["ScheduleExpression"],
                schedule.get("ScheduleExpressionTimezone", "UTC"),
            )
            known = self._due.get(name)
            try:
                if known is None or known[0] != expression:  # new or changed: counts from now
                    self._due[name] = (expression, next_fire(expression, now, zone))
                while self._due[name][1] <= now:
                    at = self._due[name][1]
                    moment = at.isoformat(timespec="seconds").replace("+00:00", "Z")
                    self._fire(name, moment)
                    fired.append((name, moment))
                    self._due[name] = (expression, next_fire(expression, at, zone))
            except NotEmulated as exc:
                self._report(f"schedule {name} skipped: {exc}")
                self._due.pop(name, None)
        return fired

    def run(self, interval: float = 0.5) -> None:
        while not self._stop.wait(interval):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - reported, and tried again next step
                self._report(f"schedules not fired: {type(exc).__name__}: {exc}")

    def start(self) -> ScheduleRunner:
        threading.Thread(target=self.run, daemon=True, name="route-schedules").start()
        return self

    def stop(self) -> None:
        self._stop.set()
