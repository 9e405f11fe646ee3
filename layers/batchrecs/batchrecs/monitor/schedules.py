"""Routes' schedules as EventBridge Scheduler schedules, kept in step with the routes file.

The routes file is the one configuration: on every tick the monitor makes the stack's schedule group hold
exactly one schedule per route with a ``schedule`` (named after the route), creating, updating and
deleting as needed. A deploy that changes a route's schedule takes effect on the next tick, and a
schedule deleted by hand comes back. Each schedule invokes the submit function with
``{"scheduledRun": {route, bucket, scheduledTime}}`` (Scheduler fills in the time), with a retry policy
and the failed-events queue as its dead-letter queue (``aws.scheduler``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from batchrecs.routes.config import RoutesConfig

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # EventBridge Scheduler's context attribute


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    expression: str
    timezone: str
    input: str  # the target's input (JSON)


class Schedules(Protocol):
    def current(self) -> dict[str, ScheduleSpec]:
        """The schedules in the stack's group, by name."""
        ...

    def put(self, spec: ScheduleSpec, exists: bool) -> None:
        """Create the schedule (or update it when it ``exists``), with the stack's target settings."""
        ...

    def delete(self, name: str) -> None: ...


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def wanted(routes: RoutesConfig, bucket: str) -> dict[str, ScheduleSpec]:
    """One schedule per scheduled route."""
    return {
        route.name: ScheduleSpec(
            name=route.name,
            expression=route.schedule,
            timezone=route.scheduleTimezone or "UTC",
            input=json.dumps(
                {"scheduledRun": {"route": route.name, "bucket": bucket, "scheduledTime": SCHEDULED_TIME}},
                sort_keys=True,
            ),
        )
        for route in routes.routes.values()
        if route.schedule is not None
    }


def sync(schedules: Schedules, routes: RoutesConfig, bucket: str) -> SyncResult:
    """Make the group match the routes file; what changed."""
    want, have = wanted(routes, bucket), schedules.current()
    result = SyncResult()
    for name, spec in sorted(want.items()):
        if have.get(name) != spec:
            schedules.put(spec, exists=name in have)
            (result.updated if name in have else result.created).append(name)
    for name in sorted(set(have) - set(want)):
        schedules.delete(name)
        result.deleted.append(name)
    return result
