"""The user directory: a DynamoDB table mapping user ids to e-mail addresses, read with BatchGetItem."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3

from batchrecs.errors import BatchrecsError
from batchrecs.sinks.ses.settings import DirectoryLookup

MAX_ATTEMPTS = 8


class DirectoryAddressBook:
    def __init__(
        self, lookup: DirectoryLookup, client: Any = None, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._lookup = lookup
        self._client = client or boto3.client("dynamodb")
        self._sleep = sleep

    def addresses(self, user_ids: Sequence[str]) -> Mapping[str, str]:
        """Up to 100 ids per call; ``UnprocessedKeys`` are retried with backoff, never dropped."""
        table, key, email = self._lookup.table, self._lookup.keyAttribute, self._lookup.emailAttribute
        request: dict[str, Any] = {
            table: {
                "Keys": [{key: {"S": user}} for user in user_ids],
                "ProjectionExpression": "#k, #e",
                "ExpressionAttributeNames": {"#k": key, "#e": email},
            }
        }
        found: dict[str, str] = {}
        for attempt in range(MAX_ATTEMPTS):
            response = self._client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table, []):
                address = item.get(email, {}).get("S")
                if address:
                    found[item[key]["S"]] = address
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            self._sleep(random.uniform(0, 0.05 * 2**attempt))
        raise BatchrecsError(f"user directory {table}: keys still unprocessed after {MAX_ATTEMPTS} attempts")
