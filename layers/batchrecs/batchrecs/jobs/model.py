"""A job's record in the jobs table and the state machine it moves through.

    RECEIVED -> REJECTED                                   (input invalid, nothing submitted)
    RECEIVED -> QUEUED -> CREATE PENDING                   (Personalize limit reached; monitor retries)
    RECEIVED -> CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE | CREATE FAILED
    RECEIVED -> DATA IMPORTING -> TRAINING -> CREATE PENDING ...   (a route's refresh: see jobs.refresh)
    ACTIVE -> EXPORTING -> EXPORTED | EXPORT_FAILED        (EXPORT_FAILED may be retried)
    ACTIVE -> EXPORTING -> IMPORTING -> EXPORTED | EXPORT_FAILED   (SES routes: contact import jobs)
    RECEIVED -> IN PARTS -> EXPORTED | EXPORT_FAILED       (an upload past one job's limits: its part
                                                            jobs each run as above; see jobs.parts)

Between CREATE PENDING and ACTIVE the status is whatever Personalize reports; anything that is not
ACTIVE or CREATE FAILED counts as still running.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from batchrecs.formats.events import JobStateChange

RECEIVED = "RECEIVED"
REJECTED = "REJECTED"
QUEUED = "QUEUED"
CREATE_PENDING = "CREATE PENDING"
ACTIVE = "ACTIVE"
CREATE_FAILED = "CREATE FAILED"
EXPORTING = "EXPORTING"
EXPORTED = "EXPORTED"
EXPORT_FAILED = "EXPORT_FAILED"
IMPORTING = "IMPORTING"
DATA_IMPORTING = "DATA IMPORTING"  # a refresh step: the route's dataset import job runs
TRAINING = "TRAINING"  # a refresh step: a new solution version trains
IN_PARTS = "IN PARTS"  # an upload run as several jobs (its parts): done when each part is
REFRESH_STEPS = (DATA_IMPORTING, TRAINING)

_NOT_IN_PERSONALIZE = {
    RECEIVED, REJECTED, QUEUED, ACTIVE, CREATE_FAILED, EXPORTING, EXPORTED, EXPORT_FAILED, IMPORTING,
    IN_PARTS, *REFRESH_STEPS,
}  # fmt: skip

Inflight = Literal["QUEUED", "RUNNING", "IMPORTING", "WAITING", "REFRESHING", "PARTS"]
# Statuses where a job waits for one of batchrecs' own functions (submit, planner, workers): the monitor
# only watches them, and reports a job that stays longer than this (it is stuck: see README).
WAITING_BOUNDS = {RECEIVED: 60 * 60, ACTIVE: 60 * 60, EXPORTING: 12 * 60 * 60}  # seconds


def inflight_of(status: str) -> Inflight | None:
    """What the monitor must do for a job in ``status``: submit it, poll it (Personalize's job or
    its SES contact imports), watch it (``WAITING_BOUNDS``), or nothing."""
    if status == QUEUED:
        return "QUEUED"
    if status == IMPORTING:
        return "IMPORTING"
    if status in REFRESH_STEPS:
        return "REFRESHING"
    if status == IN_PARTS:
        return "PARTS"
    if status in WAITING_BOUNDS:
        return "WAITING"
    if status not in _NOT_IN_PERSONALIZE:
        return "RUNNING"
    return None


class Job(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    jobName: str
    route: str
    routeSnapshot: str | None = None  # the route as configured at submit (JSON): what the job's export uses
    kind: str | None = None
    status: str
    inflight: Inflight | None = None
    sourceBucket: str
    sourceKey: str
    sourceIdentity: str
    createdAt: str
    updatedAt: str
    stagedPath: str | None = None
    outputPath: str | None = None
    jobArn: str | None = None
    solutionVersionArn: str | None = None  # the model the job ran (a solutionArn route: its newest then)
    refreshImportArn: str | None = None  # the refresh's dataset import job
    refreshVersionArn: str | None = None  # the refresh's solution version (trained for this job)
    request: str | None = None
    validation: dict[str, int] | None = None
    reportKey: str | None = None
    failureReason: str | None = None
    export: dict[str, Any] | None = None
    # Chunked export progress: the planner sets chunksTotal; each worker adds its chunk id and counts once.
    chunksTotal: int | None = None
    chunksDone: set[str] | None = None
    exportLines: int | None = None
    exportWritten: int | None = None  # lines
    exportRecords: int | None = None  # items stored
    exportFailed: int | None = None
    generatedAt: str | None = None
    chunksFailed: set[str] | None = None  # chunks that used up their retries (in the dead-letter queue)
    chunkRetry: str | None = None  # the latest chunk failure that will be retried: which, when, why
    exportMissing: int | None = None  # SES: users without an e-mail address
    exportThrottles: int | None = None  # DynamoDB: throttled BatchWriteItem calls (retried, nothing dropped)
    exportSuperseded: int | None = None  # lines not written because a newer job of the route exports
    exportRemoved: int | None = None  # records of the previous export's ids not in this one, deleted
    exportBelowThemeScore: int | None = None  # themes: items below the route's minThemeScore, left out
    importJobs: list[str] | None = None  # SES: the contact import jobs started for this export
    contactImport: dict[str, Any] | None = None  # SES: what the import did (merge counts, then job counts)
    preferencesReadAt: str | None = None  # SES: when the import's contact preferences were read
    contactScan: dict[str, Any] | None = None  # SES: how far the contact list has been read (token, pages)
    stuckReported: str | None = None  # the status in which the monitor reported the job stuck (once)
    parts: list[str] | None = None  # an upload run as several jobs: their names, in input order
    partOf: str | None = None  # a part: the job of its upload (which reports the whole run)
    history: list[dict[str, str]] | None = None  # each status and when the job entered it, oldest first

    @property
    def age(self) -> tuple[str, str]:
        """Which of a route's jobs is newer: the later upload (then the name, to break a tie)."""
        return (self.createdAt, self.jobName)

    @property
    def chunks_finished(self) -> bool:
        return self.chunksTotal is not None and len(self.chunksDone or ()) >= self.chunksTotal

    def moved_to(self, status: str, now: str, **changes: Any) -> Job:
        """A copy in ``status`` with ``changes`` applied, the monitor index kept right and the change in
        its history."""
        history = [*(self.history or []), {"status": status, "at": now}]
        return self.model_copy(
            update={
                "status": status,
                "inflight": inflight_of(status),
                "updatedAt": now,
                "history": history,
                **changes,
            }
        )

    def state_change(self) -> JobStateChange:
        return JobStateChange(
            jobName=self.jobName,
            jobArn=self.jobArn,
            route=self.route,
            kind=self.kind,
            status=self.status,
            outputPath=self.outputPath,
            failureReason=self.failureReason,
            solutionVersionArn=self.solutionVersionArn,
            partOf=self.partOf,
            parts=self.parts,
        )
