"""One monitor tick: poll running jobs, advance SES contact imports, then submit queued jobs while
Personalize has room."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from batchrecs.clock import utc_now
from batchrecs.errors import BatchrecsError
from batchrecs.export.contacts import ContactImporter
from batchrecs.export.reader import output_prefix
from batchrecs.export.service import finish
from batchrecs.jobs.lifecycle import record_change, start_job
from batchrecs.jobs.model import EXPORT_FAILED, EXPORTED, IMPORTING, QUEUED, Job
from batchrecs.ports import EventPublisher, JobStore, PersonalizeJobs
from batchrecs.routes.config import JobKind, RoutesConfig, SesDestination

logger = Logger(child=True)


@dataclass
class MonitorSummary:
    polled: int = 0
    changed: int = 0
    submitted: int = 0
    still_queued: int = 0
    importing: int = 0
    errors: list[str] = field(default_factory=list)


class MonitorError(BatchrecsError):
    """Some jobs could not be polled or submitted this tick; the others were."""


class Monitor:
    def __init__(
        self,
        jobs: JobStore,
        personalize: PersonalizeJobs,
        events: EventPublisher,
        clock: Callable[[], str] = utc_now,
        routes: RoutesConfig | None = None,
        contacts: ContactImporter | None = None,
    ) -> None:
        self._jobs = jobs
        self._personalize = personalize
        self._events = events
        self._clock = clock
        self._routes = routes
        self._contacts = contacts
        self._changed = 0

    def tick(self) -> MonitorSummary:
        """Poll and submit; a job that fails is reported at the end without stopping the others."""
        summary = MonitorSummary()
        self._changed = 0
        for job in list(self._jobs.inflight("RUNNING")):
            summary.polled += 1
            self._guarded(summary, job, self._poll)
        for job in list(self._jobs.inflight("IMPORTING")):
            summary.importing += 1
            self._guarded(summary, job, self._advance_import)
        queued = list(self._jobs.inflight("QUEUED"))
        for position, job in enumerate(queued):
            started = self._guarded(summary, job, self._submit)
            if started is not None and started.status == QUEUED:
                summary.still_queued = len(queued) - position
                break  # Personalize is still at its limit: the rest wait for the next tick
            if started is not None:
                summary.submitted += 1
        summary.changed = self._changed
        if summary.errors:
            raise MonitorError("; ".join(summary.errors))
        return summary

    def _poll(self, job: Job) -> Job:
        if job.kind is None or job.jobArn is None:
            raise BatchrecsError("running job without kind or ARN")
        status, reason = self._personalize.describe(JobKind(job.kind), job.jobArn)
        if status != job.status:
            self._record(job, job.moved_to(status, self._clock(), failureReason=reason))
        return job

    def _advance_import(self, job: Job) -> Job:
        """An SES export whose contacts are staged: start its import jobs, or finish it once they end.

        Started imports are recorded on the job; if that save is lost the next tick starts them again,
        which imports the same contacts again (a PUT of the same data).
        """
        if self._contacts is None or self._routes is None or not job.outputPath:
            raise BatchrecsError("an SES import is pending but the monitor has no contact importer")
        destination = self._routes.get(job.route).destination
        if not isinstance(destination, SesDestination):
            raise BatchrecsError(f"route {job.route} no longer exports to SES")
        bucket = output_prefix(job.outputPath)[0]
        if job.importJobs is None:
            plan = self._contacts.prepare(bucket, job.jobName, destination)
            job_ids = self._contacts.start(bucket, plan.files, destination)
            started = job.model_copy(
                update={"importJobs": job_ids, "contactImport": plan.counts, "updatedAt": self._clock()}
            )
            self._jobs.save(started, expected_status=IMPORTING)
            logger.info("contact imports started", extra={"job_name": job.jobName, **plan.counts})
            if job_ids:
                return started
            job = started
        result = self._contacts.poll(job.importJobs or [])
        if result is None:
            return job
        failure = result.pop("failure")
        ended = job.model_copy(update={"contactImport": {**(job.contactImport or {}), **result}})
        finish(ended, EXPORT_FAILED if failure else EXPORTED, self._jobs, self._events, self._clock, failure)
        self._changed += 1
        return ended

    def _submit(self, job: Job) -> Job:
        started = start_job(job, self._personalize, self._clock())
        if started.status != job.status:
            self._record(job, started)
        return started

    def _record(self, old: Job, new: Job) -> None:
        logger.info(
            "job status changed", extra={"job_name": new.jobName, "from": old.status, "to": new.status}
        )
        record_change(new, old.status, self._jobs, self._events)
        self._changed += 1

    def _guarded(self, summary: MonitorSummary, job: Job, step: Callable[[Job], Job]) -> Job | None:
        try:
            return step(job)
        except (BatchrecsError, ClientError) as exc:
            logger.exception("monitor step failed", extra={"job_name": job.jobName})
            summary.errors.append(f"{job.jobName}: {exc}")
            return None
