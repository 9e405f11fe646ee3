"""The events batchrecs publishes on its bus, and the typed envelopes its handlers receive."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel, SqsRecordModel
from pydantic import BaseModel, ConfigDict, Json

SOURCE = "batchrecs"
JOB_STATE_CHANGE = "Batch Job State Change"
EXPORT_COMPLETED = "Batch Export Completed"
# the export of one part of an upload run as several jobs ended: the upload's own job publishes
# EXPORT_COMPLETED once, when every part has ended, with the counts of all of them
EXPORT_PART_COMPLETED = "Batch Export Part Completed"
JOB_STUCK = "Batch Job Stuck"


class JobStateChange(BaseModel):
    """Detail of ``Batch Job State Change``: published on every status change of a job."""

    model_config = ConfigDict(extra="ignore")

    jobName: str
    jobArn: str | None = None
    route: str
    kind: str | None = None
    status: str
    outputPath: str | None = None
    failureReason: str | None = None
    solutionVersionArn: str | None = None  # the model the job runs (once submitted)
    partOf: str | None = None  # a part of an upload run as several jobs: the upload's job
    parts: list[str] | None = None  # an upload run as several jobs: its parts' jobs


class PartOutcome(BaseModel):
    """One part of an upload run as several jobs, as it ended."""

    jobName: str
    status: str
    lines: int
    recordsWritten: int
    failureReason: str | None = None
    errorsReport: str | None = None


class ExportCompleted(BaseModel):
    """Detail of ``Batch Export Completed``: the export of a job ended (EXPORTED or EXPORT_FAILED)."""

    model_config = ConfigDict(extra="ignore")

    jobName: str
    route: str
    kind: str | None
    status: Literal["EXPORTED", "EXPORT_FAILED"]
    lines: int
    linesWritten: int  # lines whose records are all stored; lines == written + failed + superseded
    linesFailed: int
    linesSuperseded: int = 0  # not written: a newer job of the route was exporting (newest job wins)
    recordsRemoved: int = 0  # deleted: ids of the route's previous export not in this one (replacePrevious)
    recordsWritten: int  # items stored: one per line, or one per (user, segment) of a segment job
    itemsBelowThemeScore: int = 0  # themes: items left out, their relevance below the route's minThemeScore
    errorsReport: str | None = None
    throttles: int = 0  # BatchWriteItem calls the table throttled (their items were retried until stored)
    failureReason: str | None = None
    solutionVersionArn: str | None = None  # the model that made these recommendations
    usersWithoutAddress: int | None = None  # SES routes: users with no e-mail address (not failures)
    contacts: dict[str, int] | None = None  # SES routes: the contact import's counts
    partOf: str | None = None  # (Batch Export Part Completed) the upload's job this part belongs to
    parts: list[PartOutcome] | None = None  # an upload run as several jobs: how each part ended


class JobStuck(BaseModel):
    """Detail of ``Batch Job Stuck``: a job waited on batchrecs' own functions longer than it should."""

    jobName: str
    route: str
    status: str
    since: str  # when it entered the status
    waitedMinutes: int
    whatToDo: str


class JobStateChangeEvent(EventBridgeModel):
    detail: JobStateChange


class ChunkMessage(BaseModel):
    """One byte range of one .out file to export: the body of a message on the chunks queue."""

    model_config = ConfigDict(extra="ignore")

    jobName: str
    chunkId: str
    bucket: str
    key: str
    etag: str
    start: int
    end: int
    generatedAt: str
    # The chunks queue is FIFO: SQS hands out one message of a group at a time. A route with
    # maxExportWorkers N spreads its chunks over N groups; other chunks each have their own.
    group: str | None = None
    # A chunk of ids whose records are removed (the file the planner writes for replacePrevious), not
    # of Personalize output lines
    remove: bool = False


class ChunkRecord(SqsRecordModel):
    """A chunks-queue record as the export worker receives it: the body is a ``ChunkMessage``."""

    body: Json[ChunkMessage]
