"""One monitor tick: poll running jobs, submit queued jobs while Personalize has room, then advance
SES contact imports."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from aws_lambda_powertools import Logger

from batchrecs.clock import utc_now
from batchrecs.errors import BatchrecsError, JobConflictError
from batchrecs.export.progress import finish
from batchrecs.formats.events import JOB_STUCK, JobStuck
from batchrecs.jobs import parts, refresh
from batchrecs.jobs.lifecycle import record_change, start_job
from batchrecs.jobs.model import ACTIVE, EXPORTING, IMPORTING, QUEUED, RECEIVED, WAITING_BOUNDS, Job
from batchrecs.monitor.schedules import SyncResult
from batchrecs.ports import Destination, EventPublisher, JobStore, PersonalizeJobs
from batchrecs.routes.config import DEFAULT_MAX_JOB_HOURS, JobKind, Route, RoutesConfig

logger = Logger(child=True)

WHAT_TO_DO = {
    RECEIVED: "the submit function kept failing: re-drive the failed-events queue, or upload again",
    ACTIVE: "the export planner did not run: re-drive the failed-events queue",
    EXPORTING: "chunks are missing or keep failing: re-drive the chunks dead-letter queue or replay",
}


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


@dataclass
class MonitorSummary:
    polled: int = 0
    changed: int = 0
    submitted: int = 0
    still_queued: int = 0
    importing: int = 0
    refreshing: int = 0  # jobs importing data or training before their batch job
    stuck: int = 0  # jobs reported stuck by this tick
    in_parts: int = 0  # uploads run as several jobs, some of whose parts still run
    routes_off: list[str] = field(default_factory=list)  # turned off by an empty template parameter
    over_time_limit: int = 0  # jobs running longer than their route's maxJobHours
    job_seconds: list[float] = field(default_factory=list)  # Personalize jobs that ended: upload to end
    errors: list[str] = field(default_factory=list)


class MonitorError(BatchrecsError):
    """Some jobs could not be polled or submitted this tick; the others were (``summary`` counts them)."""

    def __init__(self, summary: MonitorSummary) -> None:
        super().__init__("; ".join(summary.errors))
        self.summary = summary


class Monitor:
    def __init__(
        self,
        jobs: JobStore,
        personalize: PersonalizeJobs,
        events: EventPublisher,
        clock: Callable[[], str] = utc_now,
        routes: RoutesConfig | None = None,
        destination_for: Callable[[Route], Destination] | None = None,
        sync_schedules: Callable[[], SyncResult] | None = None,
    ) -> None:
        self._jobs = jobs
        self._personalize = personalize
        self._events = events
        self._clock = clock
        self._routes = routes
        self._destination_for = destination_for
        self._sync_schedules = sync_schedules  # routes' schedules made to match the routes file
        self._changed = 0

    def tick(self) -> MonitorSummary:
        """Poll, submit, then advance contact imports. Each job's step is isolated: one that fails, for
        whatever reason, is reported at the end without stopping the others; the SES import step, the
        longest, comes last, so even a tick that runs out of time has polled and submitted."""
        summary = MonitorSummary()
        self._changed = 0
        if self._routes is not None and self._routes.disabled:  # said on every tick: an upload is REJECTED
            summary.routes_off = sorted(self._routes.disabled)
            logger.info("routes turned off", extra={"routes": self._routes.disabled})
        for job in list(self._jobs.inflight("RUNNING")):
            summary.polled += 1
            polled = self._guarded(summary, job, self._poll)
            if polled is not None and polled.status != job.status and polled.inflight != "RUNNING":
                summary.job_seconds.append(_seconds_between(job.createdAt, polled.updatedAt))
            elif polled is not None and self._over_time_limit(job):
                summary.over_time_limit += 1
        if self._sync_schedules is not None:
            try:
                synced = self._sync_schedules()
                if synced.created or synced.updated or synced.deleted:
                    changes = {f"schedules_{name}": value for name, value in asdict(synced).items()}
                    logger.info("route schedules synced", extra=changes)
            except Exception as exc:  # noqa: BLE001 - the jobs' steps run all the same
                logger.exception("route schedules not synced")
                summary.errors.append(f"schedules: {type(exc).__name__}: {exc}")
        for job in list(self._jobs.inflight("REFRESHING")):  # before QUEUED: a refreshed job may queue
            summary.refreshing += 1
            self._guarded(summary, job, self._refresh)
        queued = list(self._jobs.inflight("QUEUED"))
        for position, job in enumerate(queued):
            started = self._guarded(summary, job, self._submit)
            if started is not None and started.status == QUEUED:
                summary.still_queued = len(queued) - position
                break  # Personalize is still at its limit: the rest wait for the next tick
            if started is not None:
                summary.submitted += 1
        for job in list(self._jobs.inflight("IMPORTING")):
            summary.importing += 1
            self._guarded(summary, job, self._advance)
        for job in list(self._jobs.inflight("PARTS")):
            gathered = self._guarded(summary, job, self._gather)
            summary.in_parts += gathered is not None and gathered.status == job.status
        for job in list(self._jobs.inflight("WAITING")):
            watched = self._guarded(summary, job, self._watch)
            summary.stuck += watched is not None and watched.stuckReported != job.stuckReported
        summary.changed = self._changed
        if summary.errors:
            raise MonitorError(summary)
        return summary

    def _watch(self, job: Job) -> Job:
        """Report, once per status, a job that waits on batchrecs' own functions too long (the job
        itself is left as it is: what to do depends on why; see ``WHAT_TO_DO``)."""
        now = self._clock()
        waited = _seconds_between(job.updatedAt, now)
        if job.stuckReported == job.status or waited < WAITING_BOUNDS[job.status]:
            return job
        self._events.publish(
            JOB_STUCK,
            JobStuck(
                jobName=job.jobName,
                route=job.route,
                status=job.status,
                since=job.updatedAt,
                waitedMinutes=int(waited // 60),
                whatToDo=WHAT_TO_DO[job.status],
            ),
        )
        logger.warning("job stuck", extra={"job_name": job.jobName, "status": job.status})
        reported = job.model_copy(update={"stuckReported": job.status})
        with contextlib.suppress(JobConflictError):  # it moved on meanwhile (the event says what was seen)
            self._jobs.save(reported, expected_status=job.status)
        return reported

    def _poll(self, job: Job) -> Job:
        if job.kind is None or job.jobArn is None:
            raise BatchrecsError("running job without kind or ARN")
        status, reason = self._personalize.describe(JobKind(job.kind), job.jobArn)
        if status != job.status:
            moved = job.moved_to(status, self._clock(), failureReason=reason)
            self._record(job, moved)
            return moved
        return job

    def _over_time_limit(self, job: Job) -> bool:
        """Whether ``job`` has run longer since its upload than its route allows (``maxJobHours``)."""
        limit = DEFAULT_MAX_JOB_HOURS  # a job whose route is gone: the default
        if self._routes is not None:
            with contextlib.suppress(BatchrecsError):
                limit = self._routes.for_job(job.route, job.routeSnapshot).maxJobHours
        return _seconds_between(job.createdAt, self._clock()) > limit * 3600

    def _refresh(self, job: Job) -> Job:
        """One step of a route's refresh (data import, training), then its batch job (``jobs.refresh``)."""
        if self._routes is None:
            raise BatchrecsError("a job is refreshing but the monitor has no routes")
        route = self._routes.for_job(job.route, job.routeSnapshot)
        if route.refresh is None:
            raise BatchrecsError(f"job {job.jobName} is {job.status} but route {route.name} has no refresh")
        moved = refresh.advance(job, route.refresh, self._personalize, self._clock())
        if moved.status != job.status:
            self._record(job, moved)
        elif moved != job:
            self._jobs.save(moved, expected_status=job.status)
        return moved

    def _advance(self, job: Job) -> Job:
        """A job whose destination goes on after its chunks (SES imports): one step of it per tick."""
        if self._destination_for is None or self._routes is None:
            raise BatchrecsError("a job is IMPORTING but the monitor has no destinations")
        route = self._routes.for_job(job.route, job.routeSnapshot)
        step = self._destination_for(route).advance(job, route)
        if step.outcome is not None:
            finish(step.job, step.outcome, self._jobs, self._events, self._clock, step.failure)
            self._changed += 1
        elif step.job != job:
            self._jobs.save(step.job, expected_status=IMPORTING)
        return step.job

    def _gather(self, job: Job) -> Job:
        """An upload run as several jobs: once each part has ended, its one outcome (``jobs.parts``)."""
        found = [self._jobs.get(name) for name in job.parts or ()]
        if not found or any(part is None for part in found):
            raise BatchrecsError(f"job {job.jobName} is {job.status} but not all of its parts exist")
        each = [part for part in found if part is not None]
        if not parts.all_ended(each):
            return job
        summed, outcome, failure = parts.combined(job, each)
        self._changed += 1
        return finish(summed, outcome, self._jobs, self._events, self._clock, failure, parts.outcomes(each))

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
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others' steps
            logger.exception("monitor step failed", extra={"job_name": job.jobName})
            summary.errors.append(f"{job.jobName}: {type(exc).__name__}: {exc}")
            return None
