"""The stack's EventBridge Scheduler group: one schedule per scheduled route (see ``monitor.schedules``)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from batchrecs.monitor.schedules import ScheduleSpec

# A tick that cannot be delivered is retried for a day, then goes to the dead-letter queue.
RETRY_POLICY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


class EventBridgeSchedules:
    def __init__(
        self, group: str, target_arn: str, role_arn: str, dead_letter_arn: str, client: Any = None
    ) -> None:
        self._group = group
        self._target = {
            "Arn": target_arn,
            "RoleArn": role_arn,
            "RetryPolicy": RETRY_POLICY,
            "DeadLetterConfig": {"Arn": dead_letter_arn},
        }
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("scheduler")

    def current(self) -> dict[str, ScheduleSpec]:
        found: dict[str, ScheduleSpec] = {}
        token: str | None = None
        while True:
            page = self._client.list_schedules(
                GroupName=self._group, **({"NextToken": token} if token else {})
            )
            for summary in page.get("Schedules", []):
                schedule = self._client.get_schedule(Name=summary["Name"], GroupName=self._group)
                target = schedule.get("Target", {})
                ours = all(target.get(key) == value for key, value in self._target.items())
                found[summary["Name"]] = ScheduleSpec(
                    name=summary["Name"],
                    expression=schedule.get("ScheduleExpression", ""),
                    timezone=schedule.get("ScheduleExpressionTimezone", "UTC"),
                    input=target.get("Input", "") if ours else "",  # another target: put ours back
                )
            token = page.get("NextToken")
            if not token:
                return found

    def put(self, spec: ScheduleSpec, exists: bool) -> None:
        request = {
            "Name": spec.name,
            "GroupName": self._group,
            "ScheduleExpression": spec.expression,
            "ScheduleExpressionTimezone": spec.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {**self._target, "Input": spec.input},
            "State": "ENABLED",
            "Description": f"batchrecs route {spec.name}: submit its standing input",
        }
        (self._client.update_schedule if exists else self._client.create_schedule)(**request)

    def delete(self, name: str) -> None:
        try:
            self._client.delete_schedule(Name=name, GroupName=self._group)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
