"""Export a finished job: .out lines -> records -> sink, with an error report and counts on the job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from aws_lambda_powertools import Logger

from batchrecs.clock import utc_now
from batchrecs.errors import ExportError, JobConflictError, JobNotFoundError
from batchrecs.export.reader import OUT_SUFFIX, iter_out_lines, output_prefix
from batchrecs.export.records import RecordContext, record_item, record_key
from batchrecs.formats.events import EXPORT_COMPLETED, ExportCompleted, JobStateChange
from batchrecs.formats.output_lines import parse_out_line
from batchrecs.jobs.model import EXPORT_FAILED, EXPORTED, EXPORTING, Job
from batchrecs.ports import EventPublisher, JobStore, ObjectStore, ObjectWriter, RecordSink
from batchrecs.routes.config import JobKind, RoutesConfig

logger = Logger(child=True)


@dataclass
class ExportCounts:
    """``lines == records_written + lines_failed``: a line whose record was replaced by a later line for
    the same key counts as written (the key holds the later record)."""

    lines: int = 0
    records_written: int = 0
    lines_failed: int = 0
    errors_report: str | None = None

    def to_json(self) -> dict[str, int | str | None]:
        return {
            "lines": self.lines,
            "recordsWritten": self.records_written,
            "linesFailed": self.lines_failed,
            "errorsReport": self.errors_report,
        }


class Exporter:
    def __init__(
        self,
        routes: RoutesConfig,
        jobs: JobStore,
        objects: ObjectStore,
        events: EventPublisher,
        sink_factory: Callable[[], RecordSink],
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self._routes = routes
        self._jobs = jobs
        self._objects = objects
        self._events = events
        self._sink_factory = sink_factory
        self._clock = clock

    def handle(self, change: JobStateChange, completed_at: datetime) -> Job:
        """Export the job an ACTIVE event names; a redelivered event re-runs it without double counting.

        Every record is a put of the same key and value, and counts are recomputed from scratch, so
        running twice leaves the same table and the same counts. An EXPORTED job is not run again.
        """
        job = self._claim(change)
        if job.status == EXPORTED:
            logger.info("job already exported", extra={"job_name": job.jobName})
            return job
        route = self._routes.get(job.route)
        try:
            if route.kind.is_segment:
                raise ExportError(f"export of {route.kind.value} segment jobs is not supported yet")
            ctx = RecordContext.for_job(route.name, job.jobName, completed_at, route.destination.ttlDays)
            counts = self._export(job, JobKind(route.kind), ctx)
        except Exception as exc:
            self._finish(job, EXPORT_FAILED, ExportCounts(), failure=str(exc))
            raise
        return self._finish(job, EXPORTED, counts)

    def _claim(self, change: JobStateChange) -> Job:
        for _ in range(3):
            job = self._jobs.get(change.jobName)
            if job is None:
                raise JobNotFoundError(f"no job named {change.jobName}")
            if job.status == EXPORTED:
                return job
            exporting = job.moved_to(EXPORTING, self._clock(), outputPath=change.outputPath or job.outputPath)
            try:
                self._jobs.save(exporting, expected_status=job.status)
            except JobConflictError:
                continue  # the monitor saved ACTIVE after publishing it, or another export started
            return exporting
        raise JobConflictError(f"job {change.jobName} kept changing while the export started")

    def _export(self, job: Job, kind: JobKind, ctx: RecordContext) -> ExportCounts:
        if not job.outputPath:
            raise ExportError("job has no output path")
        bucket, prefix = output_prefix(job.outputPath)
        keys = self._objects.list_keys(bucket, prefix, suffix=OUT_SUFFIX)
        if not keys:
            raise ExportError(f"no {OUT_SUFFIX} files under {job.outputPath}")
        counts = ExportCounts()
        sink = self._sink_factory()
        errors = _ErrorReport(self._objects, bucket, f"reports/{job.jobName}/errors.jsonl")
        try:
            for key, number, line in iter_out_lines(self._objects, bucket, keys):
                if not line.strip():
                    continue
                counts.lines += 1
                parsed = parse_out_line(line, kind)
                if isinstance(parsed, str):
                    counts.lines_failed += 1
                    errors.add(key, number, parsed)
                    continue
                sink.put(record_key(parsed, ctx), record_item(parsed, ctx))
            sink.flush()
        except BaseException:
            errors.abort()
            raise
        counts.errors_report = errors.close()
        counts.records_written = sink.written + sink.superseded
        logger.info(
            "exported job", extra={"job_name": job.jobName, **counts.to_json(), "retries": sink.retries}
        )
        return counts

    def _finish(self, job: Job, status: str, counts: ExportCounts, failure: str | None = None) -> Job:
        """Publish the completion event, then record the outcome (an event may repeat, never vanish)."""
        done = job.moved_to(status, self._clock(), export=counts.to_json(), failureReason=failure)
        self._events.publish(
            EXPORT_COMPLETED,
            ExportCompleted(
                jobName=job.jobName,
                route=job.route,
                kind=job.kind,
                status=status,  # type: ignore[arg-type]
                lines=counts.lines,
                recordsWritten=counts.records_written,
                linesFailed=counts.lines_failed,
                errorsReport=counts.errors_report,
                failureReason=failure,
            ),
        )
        self._jobs.save(done, expected_status=EXPORTING)
        return done


class _ErrorReport:
    """``reports/<job>/errors.jsonl``: one line per unusable output line; only created if needed."""

    def __init__(self, objects: ObjectStore, bucket: str, key: str) -> None:
        self._objects = objects
        self._bucket = bucket
        self._key = key
        self._writer: ObjectWriter | None = None

    def add(self, file: str, line: int, reason: str) -> None:
        if self._writer is None:
            self._writer = self._objects.writer(self._bucket, self._key, "application/x-ndjson")
        self._writer.write(orjson.dumps({"file": file, "line": line, "reason": reason}) + b"\n")

    def close(self) -> str | None:
        if self._writer is None:
            return None
        self._writer.close()
        return f"s3://{self._bucket}/{self._key}"

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
