"""Write records with BatchWriteItem, retrying unprocessed items with exponential backoff and jitter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from batchrecs.errors import WriteRetriesExhausted

logger = Logger(child=True)

BATCH_SIZE = 25  # BatchWriteItem's limit
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


class DynamoDBRecordSink:
    """Buffers up to 25 records; a key seen twice in one buffer keeps the later record.

    Batches are written in order and each is fully written (or the export fails) before the next,
    so across batches the later line for a key also wins. Nothing is dropped silently: items still
    unprocessed after ``max_attempts`` raise ``WriteRetriesExhausted``.
    """

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        max_attempts: int = 10,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._given = client
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self.written = 0
        self.superseded = 0
        self.retries = 0

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("dynamodb")

    def put(self, key: tuple[str, str], item: dict[str, Any]) -> None:
        if key in self._pending:
            self.superseded += 1
            del self._pending[key]  # re-insert so the later record keeps its place in line order
        self._pending[key] = item
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        requests = [{"PutRequest": {"Item": item}} for item in self._pending.values()]
        self._pending = {}
        attempt = 0
        while requests:
            attempt += 1
            try:
                response = self._client.batch_write_item(RequestItems={self._table: requests})
                unprocessed = response.get("UnprocessedItems", {}).get(self._table, [])
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in _THROTTLED:
                    raise
                unprocessed = requests
            self.written += len(requests) - len(unprocessed)
            requests = unprocessed
            if not requests:
                return
            if attempt >= self._max_attempts:
                raise WriteRetriesExhausted(len(requests), attempt)
            self.retries += 1
            self._sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt))."""
        return random.uniform(0, min(self._max_delay, self._base_delay * 2**attempt))
