"""The DynamoDB destination: each chunk's lines become items of the recommendations table.

One item per user (per item for related-items) and route, or one per (user, segment) of a segment job
(see ``records``); written through the signed, rate-adapting writer (``writer``). The job is EXPORTED
when its last chunk is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from batchrecs.errors import BatchrecsError
from batchrecs.formats.output_lines import SegmentLine
from batchrecs.jobs.model import Job
from batchrecs.jobs.progress import Advance, ChunkCounts, ChunkWork, themed
from batchrecs.ports import RecordSink
from batchrecs.routes.config import JobKind, Route
from batchrecs.sinks.dynamodb.ports import BatchWriter
from batchrecs.sinks.dynamodb.records import RecordContext, record_item, record_key, segment_records
from batchrecs.sinks.dynamodb.settings import DynamoDBDestination
from batchrecs.sinks.dynamodb.writer import AdaptiveRate, ShardedRecordSink

INITIAL_WRITES_PER_SECOND = 1000.0  # per worker; AIMD takes it up to what the table accepts


class DynamoDBRecords:
    def __init__(self, sink_for: Callable[[Route], RecordSink]) -> None:
        self.sink_for = sink_for

    def write_chunk(self, work: ChunkWork) -> ChunkCounts:
        route, counts = work.route, work.counts
        if not isinstance(route.destination, DynamoDBDestination):
            raise BatchrecsError(f"route {route.name} does not export to DynamoDB")
        ctx = RecordContext.for_job(
            route.name, work.job_name, work.generated_at, route.destination.ttlDays, work.solution_version
        )
        shared = ctx.encoded()
        by_attribute = route.kind is JobKind.ITEM_ATTRIBUTE_AFFINITY
        sink = self.sink_for(route)
        try:
            for _, parsed in work.lines:
                if isinstance(parsed, SegmentLine):
                    for key, item in segment_records(parsed, shared, by_attribute):
                        sink.put(key, item)
                else:
                    parsed = themed(parsed, route, counts)
                    sink.put(record_key(parsed, ctx), record_item(parsed, shared))
            sink.flush()
        finally:
            sink.close()
        counts.written = counts.lines - counts.failed  # flushed: every record of these lines is stored
        counts.records = sink.written + sink.superseded
        counts.retries, counts.throttles = sink.retries, sink.throttles
        return counts

    def remove_chunk(self, route: Route, ids: Iterable[str], counts: ChunkCounts) -> ChunkCounts:
        """Delete the route's record of each id (``pk`` the id, ``sk`` the route)."""
        sink = self.sink_for(route)
        try:
            for record_id in ids:
                sink.delete((record_id, route.name))
            sink.flush()
        finally:
            sink.close()
        counts.removed = sink.written + sink.superseded
        counts.retries, counts.throttles = sink.retries, sink.throttles
        return counts

    def after_last_chunk(self, job: Job, now: str) -> None:
        """Every record is written once the chunks are: the export is done (None)."""

    def advance(self, job: Job, route: Route) -> Advance:
        raise BatchrecsError(
            f"route {route.name} now exports to DynamoDB, which has no step after the chunks "
            f"(job {job.jobName} is {job.status})"
        )


def sink_factory(
    table: str, writer: BatchWriter, worker_concurrency: int, threads: int
) -> Callable[[Route], RecordSink]:
    """A route's sink, with its share of the route's write budget.

    At most ``min(maxExportWorkers, worker_concurrency)`` of the route's chunks run at once (its FIFO
    groups, within the stack's bound), so an equal share each keeps ``maxWritesPerSecond`` a cap across
    all of them.
    """

    def sink_for(route: Route) -> RecordSink:
        if not isinstance(route.destination, DynamoDBDestination):
            raise TypeError(f"route {route.name} does not export to DynamoDB")
        budget = route.destination.maxWritesPerSecond
        workers = min(route.maxExportWorkers or worker_concurrency, worker_concurrency)
        share = budget / workers if budget else float("inf")
        return ShardedRecordSink(
            table,
            writer,
            threads=threads,
            rate=AdaptiveRate(initial=min(INITIAL_WRITES_PER_SECOND, share), maximum=share),
        )

    return sink_for
