"""The chunks queue (FIFO): one message per byte range of a job's output.

Each message carries its group (``export.plan.message_group``) and a deduplication id naming the
chunk, so a repeated send within SQS's five-minute window is dropped by the queue.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3

from batchrecs.errors import BatchrecsError
from batchrecs.export.plan import message_group
from batchrecs.formats.events import ChunkMessage

_BATCH = 10  # SendMessageBatch's limit


class SqsChunkQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._url = queue_url
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("sqs")

    def send(self, messages: list[ChunkMessage]) -> None:
        for first in range(0, len(messages), _BATCH):
            batch = messages[first : first + _BATCH]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": m.model_dump_json(),
                    "MessageGroupId": message_group(m),
                    "MessageDeduplicationId": f"{m.jobName}.{m.chunkId}",
                }
                for i, m in enumerate(batch)
            ]
            response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            if response.get("Failed"):
                failed = ", ".join(f"{f['Id']}: {f.get('Code')}" for f in response["Failed"])
                raise BatchrecsError(f"chunk messages not sent: {failed}")

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self._client.change_message_visibility(
            QueueUrl=self._url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


def redrive(from_url: str, to_url: str, client: Any = None, limit: int | None = None) -> int:
    """Move chunk messages from a dead-letter queue back to the chunks queue; return how many moved.

    Each goes back to its group, with a new deduplication id (the first send's may still be in the
    queue's five-minute window). Each message is sent before it is deleted, so a crash repeats a
    message rather than losing it (the export counts each chunk once).
    """
    sqs = client or boto3.client("sqs")
    moved = 0
    while limit is None or moved < limit:
        messages = sqs.receive_message(QueueUrl=from_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return moved
        for message in messages[: None if limit is None else limit - moved]:
            chunk = ChunkMessage.model_validate_json(message["Body"])
            sqs.send_message(
                QueueUrl=to_url,
                MessageBody=message["Body"],
                MessageGroupId=message_group(chunk),
                MessageDeduplicationId=f"redrive.{message['MessageId']}",
            )
            sqs.delete_message(QueueUrl=from_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved
