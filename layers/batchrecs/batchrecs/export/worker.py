"""Export one chunk of a finished job: read its lines, hand them to the route's destination, count the
chunk on the job once (a redelivered chunk is not counted twice).

The worker whose chunk completes the set moves the job on, where its destination's ``after_last_chunk``
says: EXPORTED, with "Batch Export Completed"; or a further step (SES: IMPORTING), which the monitor
advances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

import orjson
from aws_lambda_powertools import Logger

from batchrecs.clock import utc_now
from batchrecs.errors import JobConflictError, JobNotFoundError
from batchrecs.export.chunks import ByteRange, owned_lines
from batchrecs.export.progress import LineReport, completed, finish, publish_completed, report_key
from batchrecs.formats.events import ChunkMessage
from batchrecs.formats.output_lines import OutLine, SegmentLine
from batchrecs.formats.output_lines import parse_out_line as user_line
from batchrecs.formats.output_lines import parse_segment_line as segment_line
from batchrecs.jobs.model import EXPORT_FAILED, EXPORTED, EXPORTING, Job
from batchrecs.jobs.progress import ChunkCounts, ChunkWork
from batchrecs.ports import ChunkQueue, Destination, EventPublisher, JobStore, ObjectStore
from batchrecs.routes.config import Route, RoutesConfig

logger = Logger(child=True)

FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 5400  # the chunks queue's visibility timeout


def retry_delay(receive_count: int, first: int = FIRST_RETRY_SECONDS) -> int:
    """Seconds before a failed chunk is tried again: 1, 4, 16, 64 minutes for receives 1 to 4, so a
    failing chunk is given up (5 receives) after about 85 minutes rather than 7.5 hours of the queue's
    90-minute visibility timeout, and a brief outage is still waited out."""
    return min(first * 4 ** (receive_count - 1), MAX_RETRY_SECONDS)


class ChunkExporter:
    def __init__(
        self,
        routes: RoutesConfig,
        jobs: JobStore,
        objects: ObjectStore,
        events: EventPublisher,
        destination_for: Callable[[Route], Destination],
        max_receives: int,
        queue: ChunkQueue,
        clock: Callable[[], str] = utc_now,
        first_retry_seconds: int = FIRST_RETRY_SECONDS,
    ) -> None:
        self._routes = routes
        self._jobs = jobs
        self._objects = objects
        self._events = events
        self.destination_for = destination_for
        self._max_receives = max_receives
        self._queue = queue
        self._clock = clock
        self._first_retry = first_retry_seconds

    def handle_delivery(
        self, message: ChunkMessage, receive_count: int, receipt_handle: str | None = None
    ) -> ChunkCounts | None:
        """Export a delivered chunk. A failure is shown on the job at once; the message is tried again
        after a growing delay (``retry_delay``), and on its last allowed receive the job fails."""
        try:
            return self.handle(message)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if receive_count >= self._max_receives:
                self.give_up(message, reason)
            else:
                self._retry_later(message, receive_count, receipt_handle, reason)
            raise  # the record fails: retried, and after the last receive dead-lettered

    def _retry_later(
        self, message: ChunkMessage, receive_count: int, receipt: str | None, reason: str
    ) -> None:
        delay = retry_delay(receive_count, self._first_retry)
        note = (
            f"chunk {message.chunkId} failed (receive {receive_count} of {self._max_receives}) at "
            f"{self._clock()}, tried again in {delay} s: {reason}"
        )
        try:  # neither step may hide the chunk's own error
            self._jobs.note_chunk_retry(message.jobName, note)
            if receipt is not None:
                self._queue.retry_later(receipt, delay)
        except Exception:
            logger.exception("could not schedule the chunk's retry", extra={"job_name": message.jobName})

    def handle(self, message: ChunkMessage) -> ChunkCounts | None:
        """Export one chunk; None when it had already been counted (a redelivered message)."""
        job = self._jobs.get(message.jobName)
        if job is None:
            raise JobNotFoundError(f"no job named {message.jobName}")
        if message.chunkId in (job.chunksDone or ()):
            logger.info("chunk already exported", extra={"job_name": job.jobName, "chunk": message.chunkId})
            self._finish_if_complete(job)
            return None
        route = self._routes.for_job(job.route, job.routeSnapshot)
        if self._jobs.newer_upload_exporting(job):  # a newer upload of the file exports: keep its records
            counts = self._skip(message, route)
        elif message.remove:
            counts = self._remove(message, route)
        else:
            counts = self._export(message, route, job.solutionVersionArn)
        updated = self._jobs.record_chunk(job.jobName, message.chunkId, counts.to_json())
        if updated is None:
            return None  # another delivery of this chunk was counted first
        logger.info(
            "exported chunk",
            extra={
                "job_name": job.jobName,
                "chunk": message.chunkId,
                **counts.to_json(),
                "retries": counts.retries,
            },
        )
        self._finish_if_complete(updated)
        return counts

    def _export(self, message: ChunkMessage, route: Route, solution_version: str | None) -> ChunkCounts:
        counts = ChunkCounts()
        errors = LineReport(self._objects, message.bucket, report_key(message, "errors"))

        def fail(offset: int, reason: str) -> None:
            counts.failed += 1
            errors.add({"file": message.key, "offset": offset, "reason": reason})

        work = ChunkWork(
            message=message,
            route=route,
            generated_at=datetime.fromisoformat(message.generatedAt),
            lines=self._lines(message, route, counts, fail),
            counts=counts,
            fail=fail,
            solution_version=solution_version,
        )
        try:
            self.destination_for(route).write_chunk(work)
        except BaseException:
            errors.abort()
            raise
        errors.close()
        return counts

    def _skip(self, message: ChunkMessage, route: Route) -> ChunkCounts:
        """A chunk of an upload older than the newest exporting upload of its key: counted, not written."""
        counts = ChunkCounts()
        for _ in self._lines(message, route, counts, lambda offset, reason: None):
            pass
        counts.superseded, counts.failed = counts.lines, 0
        logger.info(
            "chunk superseded by a newer job", extra={"job_name": message.jobName, "lines": counts.lines}
        )
        return counts

    def _remove(self, message: ChunkMessage, route: Route) -> ChunkCounts:
        """A chunk of the planner's removal file (one JSON string id per line): delete those records."""
        ids = (orjson.loads(line) for _, line in self._owned_lines(message) if line.strip())
        return self.destination_for(route).remove_chunk(route, ids, ChunkCounts())

    def _lines(
        self, message: ChunkMessage, route: Route, counts: ChunkCounts, fail: Callable[[int, str], None]
    ) -> Iterator[tuple[int, OutLine | SegmentLine]]:
        """The chunk's usable lines, parsed, with their offsets; unusable ones are counted and reported."""

        for offset, line in self._owned_lines(message):
            if not line.strip():
                continue
            counts.lines += 1
            parsed = (segment_line if route.kind.is_segment else user_line)(line, route.kind)
            if isinstance(parsed, str):
                fail(offset, parsed)
                continue
            yield offset, parsed

    def _owned_lines(self, message: ChunkMessage) -> Iterator[tuple[int, bytes]]:
        def read_from(offset: int) -> Iterable[bytes]:
            return self._objects.iter_range(message.bucket, message.key, offset, message.etag)

        return owned_lines(read_from, ByteRange(message.start, message.end))

    def give_up(self, message: ChunkMessage, reason: str) -> Job:
        """The chunk failed on its last allowed receive: record it on the job and say so."""
        job = self._jobs.record_chunk_failure(
            message.jobName, message.chunkId, f"chunk {message.chunkId}: {reason}"
        )
        logger.error("export chunk given up", extra={"job_name": job.jobName, "chunk": message.chunkId})
        publish_completed(self._events, completed(job, EXPORT_FAILED, job.failureReason))
        return job

    def _finish_if_complete(self, job: Job) -> None:
        """The chunk that completes the set moves the job on (also after failed chunks were re-driven):
        to EXPORTED, or to the status where its destination goes on (the monitor advances it)."""
        if job.status in (EXPORTING, EXPORT_FAILED) and job.chunks_finished and not job.chunksFailed:
            try:
                destination = self.destination_for(self._routes.for_job(job.route, job.routeSnapshot))
                moved = destination.after_last_chunk(job, self._clock())
                if moved is None:
                    finish(job, EXPORTED, self._jobs, self._events, self._clock)
                else:
                    self._jobs.save(moved, expected_status=job.status)
                    logger.info("chunks written, destination goes on", extra={"job_name": job.jobName})
            except JobConflictError:
                logger.info("export finished by another worker", extra={"job_name": job.jobName})
