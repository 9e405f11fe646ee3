"""Publishing our events on the stack's EventBridge bus."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from pydantic import BaseModel

from batchrecs.errors import BatchrecsError
from batchrecs.formats.events import SOURCE


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: Any = None) -> None:
        self._bus_name = bus_name
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("events")

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": detail_type,
            "Detail": detail.model_dump_json(),
            "EventBusName": self._bus_name,
        }
        response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            raise BatchrecsError(
                f"event not published: {failure.get('ErrorCode')}: {failure.get('ErrorMessage')}"
            )
