"""A fast, polite BatchWriteItem path for large exports: records, already DynamoDB wire bytes, are
joined into 25-item bodies and sent through a ``BatchWriter`` (``batchrecs.aws.dynamodb_batches``:
signed requests over keep-alive connections).

``ShardedRecordSink`` writes with several threads to overlap network latency. A key always goes to
the same thread and each thread writes its batches in order, so the later record for a key still
wins. ``AdaptiveRate`` (AIMD over a token bucket) slows down when DynamoDB throttles and speeds up
again when it stops; items are retried until written or the attempts run out (then it raises).
"""

from __future__ import annotations

import contextvars
import queue
import random
import threading
import time
from collections.abc import Callable

import orjson

from batchrecs.errors import DynamoDBError, WriteRetriesExhausted
from batchrecs.sinks.dynamodb.ports import BatchWriter

BATCH_SIZE = 25


class AdaptiveRate:
    """AIMD send rate (items/s) over a token bucket, shared by the writer threads.

    Until the first throttle the rate grows by ``slow_start`` per batch (like TCP's slow start, so a
    worker reaches the table's capacity within a second); after it, additively by ``increase``. It only
    grows while it is what holds the writers back (a send had to wait for tokens): otherwise it would
    drift far above the real throughput and one throttle would barely lower it. ``maximum`` is a hard
    ceiling (a route's share of its write budget).

    Throttles within ``cooldown`` seconds of a decrease count as the same congestion (the writers'
    requests in flight all meet the same full table), so the rate is cut once, not collapsed. The
    bucket holds ``burst`` seconds of sends (at least one batch), so bursts stay small.
    """

    def __init__(
        self,
        initial: float = 2000.0,
        minimum: float = 25.0,
        maximum: float = 1e9,
        increase: float = 25.0,
        decrease: float = 0.8,
        slow_start: float = 0.1,
        cooldown: float = 0.5,
        burst: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = min(initial, maximum)
        self.maximum = maximum
        self._minimum = minimum
        self._increase = increase
        self._slow_start = slow_start
        self._decrease = decrease
        self._cooldown = cooldown
        self._burst = burst
        self._decreased_at = -float("inf")
        self._clock = clock
        self._sleep = sleep
        self._tokens = 0.0
        self._last = clock()
        self._lock = threading.Lock()
        self._binding = False
        self.throttles = 0

    def acquire(self, items: int) -> None:
        """Take ``items`` tokens, sleeping once for any shortfall (a reservation: no polling loop)."""
        with self._lock:
            now = self._clock()
            capacity = max(self.rate * self._burst, items)
            self._tokens = min(capacity, self._tokens + (now - self._last) * self.rate) - items
            self._last = now
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if wait > 0:
                self._binding = True
        if wait > 0:
            self._sleep(wait)

    def succeeded(self) -> None:
        with self._lock:
            if self._binding:
                grown = (
                    self.rate * (1 + self._slow_start) if not self.throttles else self.rate + self._increase
                )
                self.rate = min(self.maximum, grown)
                self._binding = False

    def throttled(self) -> None:
        with self._lock:
            self.throttles += 1
            now = self._clock()
            if now - self._decreased_at >= self._cooldown:
                self.rate = max(self._minimum, self.rate * self._decrease)
                self._decreased_at = now


STALL_SECONDS = 180.0  # a few minutes of nothing stored: an outage; the chunk is retried later


class ShardedRecordSink:
    """A ``RecordSink`` writing through ``writer`` with ``threads`` in-order shards."""

    def __init__(
        self,
        table: str,
        writer: BatchWriter,
        threads: int = 4,
        rate: AdaptiveRate | None = None,
        stall_seconds: float = STALL_SECONDS,
        base_delay: float = 0.05,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        batches_per_handoff: int = 4,
    ) -> None:
        self._handoff = BATCH_SIZE * batches_per_handoff  # items a writer thread is woken up for
        self._body_start = b'{"RequestItems":{' + orjson.dumps(table) + b":["
        self._writer = writer
        self.rate = rate or AdaptiveRate()
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep
        self._buffers: list[dict[tuple[str, str], bytes]] = [{} for _ in range(threads)]
        self._queues: list[queue.Queue[list[bytes] | None]] = [queue.Queue(maxsize=8) for _ in range(threads)]
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self.written = 0
        self.superseded = 0
        self.retries = 0
        # each thread runs in a copy of its creator's context (context variables set for this invocation)
        self._threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(self._run, q), daemon=True)
            for q in self._queues
        ]
        for thread in self._threads:
            thread.start()

    @property
    def throttles(self) -> int:
        return self.rate.throttles

    def put(self, key: tuple[str, str], item: bytes) -> None:
        """Buffer ``item`` (the encoded ``Item`` of a ``PutRequest``) under its table key."""
        self._buffer(key, b'{"PutRequest":{"Item":' + item + b"}}")

    def delete(self, key: tuple[str, str]) -> None:
        """Buffer the deletion of the item at ``key`` (``pk``, ``sk``); an item that is not there is no
        error (DeleteRequest), so a deletion repeated is harmless."""
        encoded = orjson.dumps({"pk": {"S": key[0]}, "sk": {"S": key[1]}})
        self._buffer(key, b'{"DeleteRequest":{"Key":' + encoded + b"}}")

    def _buffer(self, key: tuple[str, str], request: bytes) -> None:
        self._raise_if_failed()
        shard = hash(key) % len(self._buffers)
        buffer = self._buffers[shard]
        if key in buffer:
            self.superseded += 1
            del buffer[key]
        buffer[key] = request
        if len(buffer) >= self._handoff:
            self._queues[shard].put(list(buffer.values()))
            self._buffers[shard] = {}

    def flush(self) -> None:
        for shard, buffer in enumerate(self._buffers):
            if buffer:
                self._queues[shard].put(list(buffer.values()))
                self._buffers[shard] = {}
        for q in self._queues:
            q.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Stop the writer threads. Records not flushed are not written (the caller failed)."""
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()

    def _raise_if_failed(self) -> None:
        if self._errors:
            raise self._errors[0]

    def _run(self, batches: queue.Queue[list[bytes] | None]) -> None:
        while True:
            items = batches.get()
            try:
                if items is None:
                    return
                for start in range(0, len(items), BATCH_SIZE):
                    if not self._errors:
                        self._write(items[start : start + BATCH_SIZE])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by flush/put
                with self._lock:
                    self._errors.append(exc)
            finally:
                batches.task_done()

    def _write(self, items: list[bytes]) -> None:
        """Write one batch of requests until every one is done.

        The shared rate paces the sends; a retry only waits a jittered backoff that grows with the
        attempts in a row that stored nothing (a partly stored batch made progress: the rate, already
        lowered, does the pacing). Attempts that store nothing for ``stall_seconds`` in a row (throttling
        or 5xx answers all along: an outage, not a busy table) raise instead of dropping.
        """
        requests = items  # PutRequest or DeleteRequest, encoded
        stalled = 0
        stalled_since = 0.0
        while True:
            self.rate.acquire(len(requests))
            body = self._body_start + b",".join(requests) + b"]}}"
            try:
                unprocessed = [orjson.dumps(request) for request in self._writer.write(body).unprocessed]
            except DynamoDBError as exc:
                if not exc.retryable:
                    raise
                unprocessed = requests
            done = len(requests) - len(unprocessed)
            with self._lock:
                self.written += done
            if not unprocessed:
                self.rate.succeeded()
                return
            self.rate.throttled()
            stalled = 0 if done else stalled + 1
            if stalled == 1:
                stalled_since = self._clock()
            elif stalled and self._clock() - stalled_since >= self._stall_seconds:
                raise WriteRetriesExhausted(len(unprocessed), stalled, self._clock() - stalled_since)
            with self._lock:
                self.retries += 1
            requests = unprocessed
            self._sleep(random.uniform(0, min(self._max_delay, self._base_delay * 2**stalled)))
