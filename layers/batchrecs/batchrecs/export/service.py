"""Export a finished job in byte-range chunks: a planner fans out, workers turn lines into records.

    ACTIVE event -> ExportPlanner: list .out files, split them into chunks, record chunksTotal on the
                    job, send one message per chunk (a route with maxExportWorkers N puts them in
                    N groups of the FIFO queue: N run at once, see ``export.plan``)
    chunk message -> ChunkExporter: read the chunk's lines, write records, count the chunk on the job
                    once (a redelivered chunk is not counted twice); the worker whose chunk completes
                    the set publishes "Batch Export Completed" and marks the job EXPORTED - or, for an
                    SES route, marks it IMPORTING: the monitor runs the SES import jobs and finishes it
                    (see ``batchrecs.export.contacts``)

Counts satisfy ``lines == linesWritten + linesFailed``: a line whose record was replaced by a later
line for the same key counts as written (the key holds the later record). ``recordsWritten`` counts
items stored: one per line of an inference job, one per (user, segment) of a segment job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aws_lambda_powertools import Logger

from batchrecs.clock import iso, utc_now
from batchrecs.errors import ExportError, JobConflictError, JobNotFoundError
from batchrecs.export.chunks import ByteRange, owned_lines
from batchrecs.export.contacts import AddressBook, ContactStager, staged_prefix, staged_tail
from batchrecs.export.plan import ExportPlan
from batchrecs.export.reader import OUT_SUFFIX, output_prefix
from batchrecs.export.records import RecordContext, record_item, record_key, segment_records
from batchrecs.formats.events import EXPORT_COMPLETED, ChunkMessage, ExportCompleted, JobStateChange
from batchrecs.formats.output_lines import OutLine, SegmentLine
from batchrecs.formats.output_lines import parse_out_line as user_line
from batchrecs.formats.output_lines import parse_segment_line as segment_line
from batchrecs.jobs.model import EXPORT_FAILED, EXPORTED, EXPORTING, IMPORTING, Job
from batchrecs.ports import ChunkQueue, EventPublisher, JobStore, ObjectStore, ObjectWriter, RecordSink
from batchrecs.routes.config import JobKind, Route, RoutesConfig, SesDestination

logger = Logger(child=True)

DEFAULT_CHUNK_BYTES = 64 << 20


@dataclass
class ChunkCounts:
    lines: int = 0
    written: int = 0  # lines whose records are all stored
    failed: int = 0
    records: int = 0  # items stored (or SES contacts staged): one per line, or per user of a segment line
    missing: int = 0  # SES: users without an e-mail address (counted and reported, not failed)
    retries: int = 0  # backoffs and throttled sends: logged per chunk, not kept on the job
    throttles: int = 0  # throttled BatchWriteItem calls (items retried until stored): added up on the job

    def to_json(self) -> dict[str, int]:
        return {
            "lines": self.lines,
            "written": self.written,
            "failed": self.failed,
            "records": self.records,
            "missing": self.missing,
            "throttles": self.throttles,
        }


class ExportPlanner:
    def __init__(
        self,
        routes: RoutesConfig,
        jobs: JobStore,
        objects: ObjectStore,
        queue: ChunkQueue,
        events: EventPublisher,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._routes = routes
        self._jobs = jobs
        self._objects = objects
        self._queue = queue
        self._events = events
        self._chunk_bytes = chunk_bytes
        self._clock = clock

    def handle(self, change: JobStateChange, completed_at: datetime) -> Job:
        """Plan the export of the job an ACTIVE event names and send its chunks.

        A redelivered event sends again the chunks not counted yet (same ids): workers count each
        chunk once. A planned job is never rewritten here, so chunks counted meanwhile are never lost.
        Within five minutes the FIFO queue drops such a repeat itself (same deduplication ids).
        """
        job = self._claim(change, iso(completed_at))
        if job.status == EXPORTED:
            logger.info("job already exported", extra={"job_name": job.jobName})
            return job
        try:
            route = self._routes.get(job.route)  # an unknown route fails the export here, not in every chunk
            if not job.outputPath:
                raise ExportError("job has no output path")
            bucket, prefix = output_prefix(job.outputPath)
            files = self._objects.list_objects(bucket, prefix, suffix=OUT_SUFFIX)
            if not files:
                raise ExportError(f"no {OUT_SUFFIX} files under {job.outputPath}")
        except Exception as exc:
            finish(job, EXPORT_FAILED, self._jobs, self._events, self._clock, failure=str(exc))
            raise
        plan = ExportPlan(
            job_name=job.jobName,
            route=route.name,
            bucket=bucket,
            generated_at=job.generatedAt or iso(completed_at),
            chunk_bytes=self._chunk_bytes,
            files=files,
        )
        workers = route.maxExportWorkers
        messages = plan.messages(workers)
        if job.chunksTotal is None:
            self._jobs.set_chunks_total(job.jobName, len(messages))
        planned = job.model_copy(update={"chunksTotal": len(messages)})
        if not messages:  # only empty .out files
            return finish(planned, EXPORTED, self._jobs, self._events, self._clock)
        done = set(planned.chunksDone or ())
        sends = [m for m in messages if m.chunkId not in done]
        if sends:
            self._queue.send(sends)
        logger.info(
            "export planned",
            extra={
                "job_name": job.jobName,
                "files": len(files),
                "chunks": len(messages),
                "sent": len(sends),
                "max_workers": workers,
            },
        )
        return planned

    def _claim(self, change: JobStateChange, generated_at: str) -> Job:
        for _ in range(3):
            job = self._jobs.get(change.jobName)
            if job is None:
                raise JobNotFoundError(f"no job named {change.jobName}")
            if job.status == EXPORTED or job.chunksTotal is not None:
                return job  # planned before: its chunks are only sent again
            exporting = job.moved_to(
                EXPORTING,
                self._clock(),
                outputPath=change.outputPath or job.outputPath,
                generatedAt=job.generatedAt or generated_at,
            )
            try:
                self._jobs.save(exporting, expected_status=job.status)
            except JobConflictError:
                continue  # the monitor saved ACTIVE after publishing it, or another delivery started
            return exporting
        raise JobConflictError(f"job {change.jobName} kept changing while the export started")


class ChunkExporter:
    def __init__(
        self,
        routes: RoutesConfig,
        jobs: JobStore,
        objects: ObjectStore,
        events: EventPublisher,
        sink_factory: Callable[[Route], RecordSink],
        max_receives: int,
        clock: Callable[[], str] = utc_now,
        address_books: Callable[[SesDestination], AddressBook] | None = None,
    ) -> None:
        self._routes = routes
        self._jobs = jobs
        self._objects = objects
        self._events = events
        self.sink_for = sink_factory
        self._address_books = address_books
        self._max_receives = max_receives
        self._clock = clock

    def handle_delivery(self, message: ChunkMessage, receive_count: int) -> ChunkCounts | None:
        """Export a delivered chunk; on its last allowed receive, a failure is recorded on the job first."""
        try:
            return self.handle(message)
        except Exception as exc:
            if receive_count >= self._max_receives:
                self.give_up(message, f"{type(exc).__name__}: {exc}")
            raise  # the record fails: retried, and after the last receive dead-lettered

    def handle(self, message: ChunkMessage) -> ChunkCounts | None:
        """Export one chunk; None when it had already been counted (a redelivered message)."""
        job = self._jobs.get(message.jobName)
        if job is None:
            raise JobNotFoundError(f"no job named {message.jobName}")
        if message.chunkId in (job.chunksDone or ()):
            logger.info("chunk already exported", extra={"job_name": job.jobName, "chunk": message.chunkId})
            self._finish_if_complete(job)
            return None
        route = self._routes.get(job.route)
        generated = datetime.fromisoformat(message.generatedAt)
        if isinstance(route.destination, SesDestination):
            counts = self._stage_contacts(message, route, route.destination, job.jobName, iso(generated))
        else:
            ctx = RecordContext.for_job(route.name, job.jobName, generated, route.destination.ttlDays)
            counts = self._export(message, route, ctx)
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

    def _lines(
        self, message: ChunkMessage, route: Route, counts: ChunkCounts, errors: _LineReport
    ) -> Iterator[tuple[int, OutLine | SegmentLine]]:
        """The chunk's usable lines, parsed, with their offsets; unusable ones are counted and reported."""

        def read_from(offset: int) -> Iterable[bytes]:
            return self._objects.iter_range(message.bucket, message.key, offset, message.etag)

        for offset, line in owned_lines(read_from, ByteRange(message.start, message.end)):
            if not line.strip():
                continue
            counts.lines += 1
            parsed = (segment_line if route.kind.is_segment else user_line)(line, route.kind)
            if isinstance(parsed, str):
                counts.failed += 1
                errors.add({"file": message.key, "offset": offset, "reason": parsed})
                continue
            yield offset, parsed

    def _export(self, message: ChunkMessage, route: Route, ctx: RecordContext) -> ChunkCounts:
        counts = ChunkCounts()
        sink = self.sink_for(route)
        shared = ctx.encoded()
        by_attribute = route.kind is JobKind.ITEM_ATTRIBUTE_AFFINITY
        errors = _LineReport(self._objects, message.bucket, _report_key(message, "errors"))
        try:
            for _, parsed in self._lines(message, route, counts, errors):
                if isinstance(parsed, SegmentLine):
                    for key, item in segment_records(parsed, shared, by_attribute):
                        sink.put(key, item)
                else:
                    sink.put(record_key(parsed, ctx), record_item(parsed, shared))
            sink.flush()
        except BaseException:
            errors.abort()
            raise
        finally:
            sink.close()
        errors.close()
        counts.written = counts.lines - counts.failed  # flushed: every record of these lines is stored
        counts.records = sink.written + sink.superseded
        counts.retries, counts.throttles = sink.retries, sink.throttles
        return counts

    def _stage_contacts(
        self,
        message: ChunkMessage,
        route: Route,
        destination: SesDestination,
        job_name: str,
        generated_at: str,
    ) -> ChunkCounts:
        """Stage the chunk's users as contacts (``exports/<job>/contacts/<chunk>.jsonl``, rewritten
        whole by a redelivered chunk); segments without a topic are unusable lines."""
        if self._address_books is None:
            raise ExportError(f"route {route.name} exports to SES but no address book is configured")
        counts = ChunkCounts()
        context = {"route": route.name, "jobName": job_name, "generatedAt": generated_at}
        errors = _LineReport(self._objects, message.bucket, _report_key(message, "errors"))
        missing = _LineReport(self._objects, message.bucket, _report_key(message, "missing-addresses"))
        out = self._objects.writer(
            message.bucket, f"{staged_prefix(job_name)}{message.chunkId}.jsonl", "application/x-ndjson"
        )
        stager = ContactStager(
            self._address_books(destination), out, lambda user: missing.add({"userId": user})
        )
        try:
            for offset, parsed in self._lines(message, route, counts, errors):
                if isinstance(parsed, SegmentLine):
                    topic = (destination.segmentTopics or {}).get(parsed.segment)
                    if topic is None:
                        counts.failed += 1
                        reason = f"segment {parsed.segment!r} has no topic in the route's segmentTopics"
                        errors.add({"file": message.key, "offset": offset, "reason": reason})
                        continue
                    tail = staged_tail([topic], {**context, "segments": [parsed.segment]})
                    for user in parsed.users():
                        stager.add(user, tail)
                else:
                    scores = {"scores": [float(text) for text in parsed.scores]} if parsed.scores else {}
                    attributes = {**context, "items": parsed.items, **scores}
                    stager.add(parsed.key, staged_tail([destination.topic or ""], attributes))
            stager.flush()
            out.close()
        except BaseException:
            out.abort()
            errors.abort()
            missing.abort()
            raise
        errors.close()
        missing.close()
        counts.written = counts.lines - counts.failed
        counts.records, counts.missing = stager.counts.contacts, stager.counts.missing
        return counts

    def give_up(self, message: ChunkMessage, reason: str) -> Job:
        """The chunk failed on its last allowed receive: record it on the job and say so."""
        job = self._jobs.record_chunk_failure(
            message.jobName, message.chunkId, f"chunk {message.chunkId}: {reason}"
        )
        logger.error("export chunk given up", extra={"job_name": job.jobName, "chunk": message.chunkId})
        self._events.publish(EXPORT_COMPLETED, _completed(job, EXPORT_FAILED, job.failureReason))
        return job

    def _finish_if_complete(self, job: Job) -> None:
        """The chunk that completes the set finishes the job (also after failed chunks were re-driven);
        an SES export goes on to its import jobs instead (the monitor finishes it)."""
        if job.status in (EXPORTING, EXPORT_FAILED) and job.chunks_finished and not job.chunksFailed:
            try:
                if isinstance(self._routes.get(job.route).destination, SesDestination):
                    importing = job.moved_to(IMPORTING, self._clock(), importJobs=None, contactImport=None)
                    self._jobs.save(importing, expected_status=job.status)
                    logger.info("contacts staged, import next", extra={"job_name": job.jobName})
                else:
                    finish(job, EXPORTED, self._jobs, self._events, self._clock)
            except JobConflictError:
                logger.info("export finished by another worker", extra={"job_name": job.jobName})


def finish(
    job: Job,
    status: str,
    jobs: JobStore,
    events: EventPublisher,
    clock: Callable[[], str],
    failure: str | None = None,
) -> Job:
    """Publish the completion event, then record the outcome (an event may repeat, never vanish)."""
    done = job.moved_to(status, clock(), export=_export_counts(job), failureReason=failure)
    events.publish(EXPORT_COMPLETED, _completed(done, status, failure))
    jobs.save(done, expected_status=job.status)
    return done


def _export_counts(job: Job) -> dict[str, Any]:
    failed = job.exportFailed or 0
    bucket = output_prefix(job.outputPath)[0] if job.outputPath else None
    counts: dict[str, Any] = {
        "lines": job.exportLines or 0,
        "linesWritten": job.exportWritten or 0,
        "linesFailed": failed,
        "recordsWritten": job.exportRecords or 0,
        "chunks": job.chunksTotal or 0,
        "errorsReport": f"s3://{bucket}/reports/{job.jobName}/errors/" if failed and bucket else None,
        "throttles": job.exportThrottles or 0,
    }
    if job.contactImport is not None:  # an SES export: what its import jobs did
        missing = job.exportMissing or 0
        counts["usersWithoutAddress"] = missing
        counts["missingAddressesReport"] = (
            f"s3://{bucket}/reports/{job.jobName}/missing-addresses/" if missing and bucket else None
        )
        counts["contacts"] = {key: value for key, value in job.contactImport.items() if key != "failure"}
    return counts


def _report_key(message: ChunkMessage, report: str) -> str:
    return f"reports/{message.jobName}/{report}/{message.chunkId}.jsonl"


def _completed(job: Job, status: str, failure: str | None) -> ExportCompleted:
    counts = _export_counts(job)
    return ExportCompleted(
        jobName=job.jobName,
        route=job.route,
        kind=job.kind,
        status=status,  # type: ignore[arg-type]
        lines=job.exportLines or 0,
        linesWritten=job.exportWritten or 0,
        linesFailed=job.exportFailed or 0,
        recordsWritten=job.exportRecords or 0,
        errorsReport=counts["errorsReport"],
        throttles=counts["throttles"],
        failureReason=failure,
        usersWithoutAddress=counts.get("usersWithoutAddress"),
        contacts=counts.get("contacts"),
    )


class _LineReport:
    """One JSON line per entry (an unusable output line: file, byte offset, reason; or a user without
    an address: its id); the object is created only if needed."""

    def __init__(self, objects: ObjectStore, bucket: str, key: str) -> None:
        self._objects = objects
        self._bucket = bucket
        self._key = key
        self._writer: ObjectWriter | None = None

    def add(self, entry: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = self._objects.writer(self._bucket, self._key, "application/x-ndjson")
        self._writer.write(orjson.dumps(entry) + b"\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
