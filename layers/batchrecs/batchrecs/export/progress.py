"""An export's progress and end: the completion event, the job's export counts, per-chunk reports.

Counts satisfy ``lines == linesWritten + linesFailed``: a line whose record was replaced by a later
line for the same key counts as written (the key holds the later record). ``recordsWritten`` counts
items stored: one per line of an inference job, one per (user, segment) of a segment job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from batchrecs import layout
from batchrecs.formats.events import (
    EXPORT_COMPLETED,
    EXPORT_PART_COMPLETED,
    ChunkMessage,
    ExportCompleted,
    PartOutcome,
)
from batchrecs.jobs.model import Job
from batchrecs.ports import EventPublisher, JobStore, ObjectStore, ObjectWriter


def finish(
    job: Job,
    status: str,
    jobs: JobStore,
    events: EventPublisher,
    clock: Callable[[], str],
    failure: str | None = None,
    parts: list[PartOutcome] | None = None,  # an upload run as several jobs: how each part ended
) -> Job:
    """Publish the completion event, then record the outcome (an event may repeat, never vanish)."""
    counts = export_counts(job)
    if parts is not None:
        counts["parts"] = [part.model_dump() for part in parts]
    done = job.moved_to(status, clock(), export=counts, failureReason=failure)
    publish_completed(events, completed(done, status, failure, parts))
    jobs.save(done, expected_status=job.status)
    return done


def publish_completed(events: EventPublisher, detail: ExportCompleted) -> None:
    """The upload's ``Batch Export Completed``, or a part's ``Batch Export Part Completed``."""
    events.publish(EXPORT_PART_COMPLETED if detail.partOf else EXPORT_COMPLETED, detail)


def export_counts(job: Job) -> dict[str, Any]:
    failed = job.exportFailed or 0
    bucket = layout.output_prefix(job.outputPath)[0] if job.outputPath else None
    counts: dict[str, Any] = {
        "lines": job.exportLines or 0,
        "linesWritten": job.exportWritten or 0,
        "linesFailed": failed,
        "recordsWritten": job.exportRecords or 0,
        "chunks": job.chunksTotal or 0,
        "errorsReport": layout.chunk_reports_url(bucket, job.jobName, "errors")
        if failed and bucket
        else None,
        "throttles": job.exportThrottles or 0,
        "linesSuperseded": job.exportSuperseded or 0,
        "recordsRemoved": job.exportRemoved or 0,
        "itemsBelowThemeScore": job.exportBelowThemeScore or 0,
    }
    if job.contactImport is not None:  # an SES export: what its import jobs did
        missing = job.exportMissing or 0
        counts["usersWithoutAddress"] = missing
        counts["missingAddressesReport"] = (
            layout.chunk_reports_url(bucket, job.jobName, "missing-addresses") if missing and bucket else None
        )
        counts["contacts"] = {key: value for key, value in job.contactImport.items() if key != "failure"}
    return counts


def completed(
    job: Job, status: str, failure: str | None, parts: list[PartOutcome] | None = None
) -> ExportCompleted:
    counts = export_counts(job)
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
        linesSuperseded=counts["linesSuperseded"],
        recordsRemoved=counts["recordsRemoved"],
        itemsBelowThemeScore=counts["itemsBelowThemeScore"],
        solutionVersionArn=job.solutionVersionArn,
        failureReason=failure,
        usersWithoutAddress=counts.get("usersWithoutAddress"),
        contacts=counts.get("contacts"),
        partOf=job.partOf,
        parts=parts,
    )


def report_key(message: ChunkMessage, report: str) -> str:
    return layout.chunk_report_key(message.jobName, report, message.chunkId)


class LineReport:
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
