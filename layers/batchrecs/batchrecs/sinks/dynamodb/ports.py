"""The DynamoDB destination's port: something that sends a BatchWriteItem body (``batchrecs.aws``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class BatchResult:
    unprocessed: list[dict[str, Any]]


class BatchWriter(Protocol):
    def write(self, body: bytes) -> BatchResult:
        """Send one BatchWriteItem request body; raise ``DynamoDBError`` (``retryable`` or not)."""
        ...
