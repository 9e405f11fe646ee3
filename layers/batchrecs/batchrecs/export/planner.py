"""Plan a finished job's export: list its .out files, split them into byte-range chunks, record the
total on the job and send one message per chunk.

A route with maxExportWorkers N puts its chunks in N groups of the FIFO queue, so N run at once (see
``export.plan``); the workers (``export.worker``) hand each chunk to the route's destination.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools import Logger

from batchrecs.clock import iso, utc_now
from batchrecs.errors import BatchrecsError, ExportError, JobConflictError, JobNotFoundError
from batchrecs.export.plan import ExportPlan
from batchrecs.export.progress import finish
from batchrecs.export.replace import write_removals
from batchrecs.formats.events import ChunkMessage, JobStateChange
from batchrecs.jobs.model import ACTIVE, EXPORT_FAILED, EXPORTED, EXPORTING, Job
from batchrecs.layout import OUT_SUFFIX, output_prefix
from batchrecs.ports import ChunkQueue, EventPublisher, JobStore, ObjectStore
from batchrecs.routes.config import Route, RoutesConfig

logger = Logger(child=True)

DEFAULT_CHUNK_BYTES = 64 << 20


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
        try:  # the route the job was submitted with: a route changed or deleted since does not matter
            route = self._routes.for_job(job.route, job.routeSnapshot)
            if not job.outputPath:
                raise ExportError("job has no output path")
            bucket, prefix = output_prefix(job.outputPath)
            files = self._objects.list_objects(bucket, prefix, suffix=OUT_SUFFIX)
            if not files:
                raise ExportError(f"no {OUT_SUFFIX} files under {job.outputPath}")
        except BatchrecsError as exc:  # for good: failed and said once (a raise is retried: said again)
            logger.error("export cannot start", extra={"job_name": job.jobName, "reason": str(exc)})
            return finish(job, EXPORT_FAILED, self._jobs, self._events, self._clock, failure=str(exc))
        plan = ExportPlan(
            job_name=job.jobName,
            route=route.name,
            bucket=bucket,
            generated_at=job.generatedAt or iso(completed_at),
            chunk_bytes=self._chunk_bytes,
            files=files,
        )
        workers = route.maxExportWorkers
        try:
            messages = plan.messages(workers) + self._removals(job, route, plan, workers)
        except BatchrecsError as exc:
            logger.error("export cannot replace", extra={"job_name": job.jobName, "reason": str(exc)})
            return finish(job, EXPORT_FAILED, self._jobs, self._events, self._clock, failure=str(exc))
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

    def _removals(self, job: Job, route: Route, plan: ExportPlan, workers: int | None) -> list[ChunkMessage]:
        """With ``replacePrevious``: chunks of the ids of the route's previous export that this job no
        longer has (their records are deleted), named ``r.<range>``, in the route's worker groups."""
        if not route.replaces_previous or route.destination.type != "dynamodb":
            return []  # SES routes replace in their import step
        previous = self._jobs.latest_export_before(job)
        if previous is None:
            return []  # the route's first export: nothing to replace
        # an upload run as several jobs is replaced as a whole: the ids of all of its parts
        inputs = [self._jobs.get(name) for name in previous.parts] if previous.parts else [previous]
        staged = [part.stagedPath if part else None for part in inputs]
        removed = write_removals(self._objects, job, previous.jobName, staged, route, plan.bucket)
        logger.info(
            "export replaces the previous one",
            extra={"job_name": job.jobName, "previous": previous.jobName, "removed_bytes": removed.size},
        )
        ranges = dataclasses.replace(plan, files=[removed]).messages(workers)
        return [
            message.model_copy(update={"chunkId": "r." + message.chunkId.split(".")[1], "remove": True})
            for message in ranges
        ]

    def _claim(self, change: JobStateChange, generated_at: str) -> Job:
        for _ in range(3):
            job = self._jobs.get(change.jobName)
            if job is None:
                raise JobNotFoundError(f"no job named {change.jobName}")
            if job.status == EXPORTED or job.chunksTotal is not None:
                return job  # planned before: its chunks are only sent again
            active = job
            if job.status != ACTIVE:  # the monitor published ACTIVE and has not saved it yet: it was
                active = job.moved_to(ACTIVE, self._clock())  # ACTIVE all the same, its history says so
            exporting = active.moved_to(
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
