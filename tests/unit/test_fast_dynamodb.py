"""The fast writer: nothing lost under throttling, later record wins across threads, responses checked."""

from __future__ import annotations

import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from batchrecs.aws.dynamodb_batches import SignedBatchWriter, parse_response
from batchrecs.errors import DynamoDBError, WriteRetriesExhausted
from batchrecs.sinks.dynamodb.ports import BatchResult
from batchrecs.sinks.dynamodb.writer import AdaptiveRate, ShardedRecordSink


class ThrottlingTable:
    """A fake writer: stores items, leaves a share of each batch unprocessed while throttling."""

    def __init__(
        self, throttle_batches: int = 0, keep_fraction: float = 0.5, error: DynamoDBError | None = None
    ):
        self.items: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.batch_sizes: list[int] = []
        self._throttle = throttle_batches
        self._keep = keep_fraction
        self._error = error
        self._lock = threading.Lock()

    def write(self, body: bytes) -> BatchResult:
        requests = next(iter(orjson.loads(body)["RequestItems"].values()))
        with self._lock:
            self.calls += 1
            self.batch_sizes.append(len(requests))
            if self._error:
                raise self._error
            accept = len(requests)
            if self._throttle > 0:
                self._throttle -= 1
                accept = int(len(requests) * self._keep)
            for request in requests[:accept]:
                if "DeleteRequest" in request:  # deleting an item that is not there is no error
                    self.items.pop(request["DeleteRequest"]["Key"]["pk"]["S"], None)
                    continue
                item = request["PutRequest"]["Item"]
                self.items[item["pk"]["S"]] = item
        return BatchResult(requests[accept:])


def _sink(table: ThrottlingTable, **kwargs: Any) -> ShardedRecordSink:
    rate = AdaptiveRate(initial=1e9, sleep=lambda s: None)
    return ShardedRecordSink("recs", table, rate=rate, **{"sleep": lambda s: None, **kwargs})


def _item(pk: str, version: int) -> bytes:
    return orjson.dumps({"pk": {"S": pk}, "sk": {"S": "home"}, "v": {"N": str(version)}})


def test_nothing_is_lost_under_throttling_and_the_rate_backs_off() -> None:
    table = ThrottlingTable(throttle_batches=40, keep_fraction=0.3)
    sink = _sink(table, threads=4)  # 40 throttled calls may all land on one batch
    for i in range(2000):
        sink.put((str(i), "home"), _item(str(i), 1))
    sink.flush()
    sink.close()
    assert len(table.items) == 2000 and sink.written == 2000
    assert sink.throttles > 0 and sink.retries > 0


def test_the_later_record_for_a_key_wins_across_batches_and_threads() -> None:
    table = ThrottlingTable(throttle_batches=10, keep_fraction=0.0)
    sink = _sink(table, threads=4)
    for version in range(5):
        for i in range(300):
            sink.put((str(i), "home"), _item(str(i), version))
    sink.flush()
    sink.close()
    assert {item["v"]["N"] for item in table.items.values()} == {"4"}


def test_writes_in_batches_of_25_per_thread() -> None:
    table = ThrottlingTable()
    sink = _sink(table, threads=1)
    for i in range(60):
        sink.put((str(i), "home"), _item(str(i), 1))
    sink.flush()
    sink.close()
    assert table.batch_sizes == [25, 25, 10] and sink.written == 60


def test_same_key_twice_in_one_batch_keeps_the_later_record_and_never_breaks_the_batch() -> None:
    table = ThrottlingTable()
    sink = _sink(table, threads=2)
    sink.put(("u1", "home"), _item("u1", 1))
    sink.put(("u2", "home"), _item("u2", 1))
    sink.put(("u1", "home"), _item("u1", 2))
    sink.flush()
    sink.close()
    assert table.items["u1"]["v"] == {"N": "2"}
    assert (sink.written, sink.superseded) == (2, 1)


def test_deletes_go_in_the_same_batches_retried_under_throttling_and_the_later_request_for_a_key_wins() -> (
    None
):
    table = ThrottlingTable(throttle_batches=6, keep_fraction=0.2)
    sink = _sink(table, threads=2)
    for i in range(100):
        sink.put((str(i), "home"), _item(str(i), 1))
    sink.flush()
    for i in range(0, 100, 2):
        sink.delete((str(i), "home"))  # the even ones
    sink.delete(("absent", "home"))  # not there: no error
    sink.delete(("1", "home"))
    sink.put(("1", "home"), _item("1", 2))  # deleted, then written again in one buffer: written
    sink.flush()
    sink.close()
    assert sorted(table.items, key=int) == [str(i) for i in range(1, 100, 2)]
    assert table.items["1"]["v"] == {"N": "2"}
    assert (sink.written, sink.superseded) == (100 + 51 + 1, 1)


def test_close_without_flush_writes_nothing_more() -> None:
    # Given a chunk that failed midway: its buffered records are not written after the failure
    table = ThrottlingTable()
    sink = _sink(table, threads=2)
    sink.put(("a", "home"), _item("a", 1))
    sink.close()
    assert table.items == {} and sink.written == 0


def test_a_non_retryable_error_surfaces_on_flush() -> None:
    sink = _sink(
        ThrottlingTable(error=DynamoDBError("ValidationException", "bad", retryable=False)), threads=2
    )
    sink.put(("a", "home"), _item("a", 1))
    with pytest.raises(DynamoDBError, match="ValidationException"):
        sink.flush()


class SimulatedTime:
    """A clock that the sink's backoff sleeps move on."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_an_outage_of_a_minute_is_waited_out_and_nothing_is_lost() -> None:
    # Given a table that answers 500 to every call for 60 (simulated) seconds: before, the writer gave
    # up after 12 attempts in a row, about 16 s
    time = SimulatedTime()
    table = ThrottlingTable(error=DynamoDBError("InternalServerError", "boom", retryable=True))
    real_write = table.write

    def write(body: bytes) -> BatchResult:
        if time.now >= 60:
            table._error = None
        return real_write(body)

    table.write = write  # type: ignore[method-assign]
    sink = _sink(table, threads=1, sleep=time.sleep, clock=time.clock)
    sink.put(("a", "home"), _item("a", 1))
    sink.flush()
    sink.close()
    assert sink.written == 1 and table.items["a"]["v"] == {"N": "1"}


def test_items_stored_by_no_attempt_for_the_stall_budget_raise() -> None:
    time = SimulatedTime()
    table = ThrottlingTable(throttle_batches=10**6, keep_fraction=0.0)
    sink = _sink(table, threads=1, stall_seconds=30, sleep=time.sleep, clock=time.clock)
    sink.put(("a", "home"), _item("a", 1))
    with pytest.raises(WriteRetriesExhausted, match="1 items still unprocessed after .* in 3. s"):
        sink.flush()
    assert 30 <= time.now < 40


def test_adaptive_rate_decreases_on_throttle_and_recovers_only_while_it_is_the_limit() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    rate = AdaptiveRate(
        initial=1000, minimum=100, maximum=540, increase=10, decrease=0.5, clock=lambda: now[0], sleep=sleep
    )
    assert rate.rate == 540  # the ceiling holds from the start
    rate.throttled()
    assert rate.rate == 270
    now[0] += 10  # sends well below the rate: it is not what limits them, so it does not grow
    rate.acquire(25)
    rate.succeeded()
    assert rate.rate == 270
    for _ in range(5):  # sends faster than the rate: they wait for tokens, and the rate grows
        rate.acquire(270)
        rate.succeeded()
    assert rate.rate == 320
    for _ in range(30):
        rate.acquire(320)
        rate.succeeded()
    assert rate.rate == 540
    for _ in range(4):  # throttles of the requests in flight together: one congestion, one cut
        rate.throttled()
    assert rate.rate == 270 and rate.throttles == 5
    for _ in range(10):  # throttled again and again, a cooldown apart: down to the minimum
        now[0] += 1
        rate.throttled()
    assert rate.rate == 100 and rate.throttles == 15


def test_slow_start_grows_the_rate_by_a_share_until_the_first_throttle() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    rate = AdaptiveRate(initial=1000, increase=10, slow_start=0.5, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        rate.acquire(2000)  # more than the rate: the bucket binds
        rate.succeeded()
    assert rate.rate == 1000 * 1.5**3
    rate.throttled()
    rate.acquire(5000)
    rate.succeeded()
    assert rate.rate == 1000 * 1.5**3 * 0.8 + 10  # additive from the first throttle on


def test_token_bucket_paces_sends() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    rate = AdaptiveRate(initial=100, clock=lambda: now[0], sleep=sleep)
    for _ in range(8):
        rate.acquire(25)  # 200 items at 100 items/s
    assert 1.5 <= now[0] <= 2.1


@pytest.mark.parametrize(
    ("status", "body", "crc", "code", "retryable"),
    [
        (
            400,
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"x"}',
            None,
            "ProvisionedThroughputExceededException",
            True,
        ),
        (
            400,
            b'{"__type":"com.amazon.coral.validate#ValidationException","message":"dup keys"}',
            None,
            "ValidationException",
            False,
        ),
        (500, b'{"__type":"InternalServerError"}', None, "InternalServerError", True),
        (200, b'{"UnprocessedItems":{}}', "123", "CRC32CheckFailed", True),
    ],
)
def test_error_responses_are_classified(
    status: int, body: bytes, crc: str | None, code: str, retryable: bool
) -> None:
    with pytest.raises(DynamoDBError) as caught:
        parse_response(status, crc, body)
    assert (caught.value.code, caught.value.retryable) == (code, retryable)


def test_unprocessed_items_are_returned() -> None:
    body = b'{"UnprocessedItems":{"recs":[{"PutRequest":{"Item":{"pk":{"S":"a"}}}}]}}'
    assert parse_response(200, str(zlib.crc32(body)), body).unprocessed == [
        {"PutRequest": {"Item": {"pk": {"S": "a"}}}}
    ]


class _Endpoint(BaseHTTPRequestHandler):
    """Answers BatchWriteItem with nothing unprocessed; records what it saw on the server."""

    protocol_version = "HTTP/1.1"  # keep-alive unless a test says otherwise
    seen: list[dict[str, Any]]
    drop_after_reply = False  # close the socket without announcing it (a server's idle timeout)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append({"headers": dict(self.headers), "body": body, "peer": self.client_address})
        reply = b'{"UnprocessedItems":{}}'
        self.send_response(200)
        self.send_header("x-amz-crc32", str(zlib.crc32(reply)))
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        self.close_connection = self.drop_after_reply

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Any:
    handler = type("Handler", (_Endpoint,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
    yield handler
    server.shutdown()
    server.server_close()


BODY = orjson.dumps({"RequestItems": {"recs": [{"PutRequest": {"Item": {"pk": {"S": "a"}}}}]}})


@pytest.mark.enable_socket
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_signed_writer_sends_a_sigv4_request_to_the_session_endpoint(endpoint: Any) -> None:
    writer = SignedBatchWriter()
    assert writer.write(BODY).unprocessed == []
    assert writer.write(BODY).unprocessed == []
    first, second = endpoint.seen
    assert first["body"] == BODY
    assert first["headers"]["X-Amz-Target"] == "DynamoDB_20120810.BatchWriteItem"
    assert first["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/us-east-1/dynamodb/aws4_request" in first["headers"]["Authorization"]
    assert first["peer"] == second["peer"]  # the connection is kept alive


@pytest.mark.enable_socket
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_signed_writer_reconnects_when_the_server_closed_a_kept_alive_connection(endpoint: Any) -> None:
    endpoint.drop_after_reply = True
    writer = SignedBatchWriter()
    for _ in range(3):
        assert writer.write(BODY).unprocessed == []
    assert len(endpoint.seen) == 3
    assert len({seen["peer"] for seen in endpoint.seen}) == 3  # a fresh connection each time


@pytest.mark.enable_socket
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_signed_writer_reports_an_unreachable_endpoint_as_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(DynamoDBError) as caught:
        SignedBatchWriter(timeout=2).write(BODY)
    assert (caught.value.code, caught.value.retryable) == ("ConnectionError", True)
