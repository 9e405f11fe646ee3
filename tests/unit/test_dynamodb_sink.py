"""The record writer: batches of 25, later record wins, unprocessed items retried, nothing lost."""

from __future__ import annotations

from typing import Any

import pytest
from batchrecs.errors import WriteRetriesExhausted
from batchrecs.sinks.dynamodb import DynamoDBRecordSink
from botocore.exceptions import ClientError

TABLE = "recs"


class FakeDynamoDB:
    """Records every BatchWriteItem; leaves the scripted number of items unprocessed per call."""

    def __init__(self, unprocessed_per_call: list[int] | None = None, throttle_calls: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self._unprocessed = list(unprocessed_per_call or [])
        self._throttle = throttle_calls

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:  # noqa: N803
        requests = RequestItems[TABLE]
        keys = [r["PutRequest"]["Item"]["pk"]["S"] for r in requests]
        if len(keys) != len(set(keys)):
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "duplicates"}}, "BatchWriteItem"
            )
        assert len(requests) <= 25
        self.calls.append(requests)
        if self._throttle:
            self._throttle -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                "BatchWriteItem",
            )
        left = self._unprocessed.pop(0) if self._unprocessed else 0
        done, rest = requests[: len(requests) - left], requests[len(requests) - left :]
        for request in done:
            item = request["PutRequest"]["Item"]
            self.stored[item["pk"]["S"]] = item
        return {"UnprocessedItems": {TABLE: rest} if rest else {}}


def _item(pk: str, value: str = "v") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "home"}, "value": {"S": value}}


def _sink(client: FakeDynamoDB, **kwargs: Any) -> tuple[DynamoDBRecordSink, list[float]]:
    sleeps: list[float] = []
    return DynamoDBRecordSink(TABLE, client=client, sleep=sleeps.append, **kwargs), sleeps


def test_writes_in_batches_of_25() -> None:
    client = FakeDynamoDB()
    sink, _ = _sink(client)
    for i in range(60):
        sink.put((str(i), "home"), _item(str(i)))
    sink.flush()
    assert [len(call) for call in client.calls] == [25, 25, 10]
    assert sink.written == 60 and len(client.stored) == 60


def test_same_key_twice_in_one_batch_keeps_the_later_record_and_never_breaks_the_batch() -> None:
    client = FakeDynamoDB()
    sink, _ = _sink(client)
    sink.put(("u1", "home"), _item("u1", "old"))
    sink.put(("u2", "home"), _item("u2"))
    sink.put(("u1", "home"), _item("u1", "new"))
    sink.flush()
    assert client.stored["u1"]["value"] == {"S": "new"}
    assert (sink.written, sink.superseded) == (2, 1)


def test_unprocessed_items_are_retried_with_growing_jittered_backoff_until_written() -> None:
    # Given a table that leaves 10, then 4, then 1 items unprocessed
    client = FakeDynamoDB(unprocessed_per_call=[10, 4, 1])
    sink, sleeps = _sink(client, base_delay=0.1, max_delay=10)
    for i in range(25):
        sink.put((str(i), "home"), _item(str(i)))
    sink.flush()
    # Then only the unprocessed items are resent, every item ends up stored, and it backed off 3 times
    assert [len(call) for call in client.calls] == [25, 10, 4, 1]
    assert len(client.stored) == 25 and sink.written == 25
    assert sink.retries == 3
    assert len(sleeps) == 3
    assert all(0 <= s < 0.1 * 2**n for n, s in enumerate(sleeps, 1))


def test_throttling_errors_retry_the_whole_batch() -> None:
    client = FakeDynamoDB(throttle_calls=2)
    sink, sleeps = _sink(client)
    sink.put(("a", "home"), _item("a"))
    sink.flush()
    assert len(client.calls) == 3 and client.stored.keys() == {"a"} and len(sleeps) == 2


def test_items_never_written_raise_instead_of_vanishing() -> None:
    client = FakeDynamoDB(unprocessed_per_call=[3] * 10)
    sink, _ = _sink(client, max_attempts=4)
    for i in range(5):
        sink.put((str(i), "home"), _item(str(i)))
    with pytest.raises(WriteRetriesExhausted) as caught:
        sink.flush()
    assert (caught.value.unprocessed, caught.value.attempts) == (3, 4)
    assert sink.written == 2


def test_other_errors_are_not_retried() -> None:
    class Broken(FakeDynamoDB):
        def batch_write_item(self, RequestItems: dict) -> dict:  # noqa: N803
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "x"}}, "BatchWriteItem"
            )

    sink, sleeps = _sink(Broken())
    sink.put(("a", "home"), _item("a"))
    with pytest.raises(ClientError):
        sink.flush()
    assert sleeps == []
