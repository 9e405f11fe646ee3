"""``batchrecs replay-export JOB``: export a finished job's output again.

The job goes back to ACTIVE with its export's progress and counts cleared, and its ``Batch Job State
Change`` (ACTIVE) is published on the stack's bus, which starts the planner as Personalize's end did:
the same ``.out`` files make the same records (the same ``generatedAt``; the table's items are put
again), and the counts start from nothing, so they are the export's, not doubled. An SES route imports
its contacts again. A newer upload of the same file that exports meanwhile still wins (its records are
kept; the replayed lines count as superseded). An upload run in parts replays each part; its own job
waits IN PARTS again and ends once, as the first time.
"""

from __future__ import annotations

from collections.abc import Callable

from batchrecs.errors import BatchrecsError, JobConflictError
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs.model import ACTIVE, EXPORT_FAILED, EXPORTED, IN_PARTS, Job
from batchrecs.jobs.progress import JOB_COUNTERS
from batchrecs.ports import EventPublisher, JobStore

REPLAYABLE = (EXPORTED, EXPORT_FAILED, ACTIVE)  # ACTIVE: a replay whose event was lost
_CLEARED = {
    "export": None,
    "chunksTotal": None,
    "chunksDone": None,
    "chunksFailed": None,
    "chunkRetry": None,
    "failureReason": None,
    "importJobs": None,
    "contactImport": None,
    "preferencesReadAt": None,
    "contactScan": None,
    "stuckReported": None,
    **dict.fromkeys(JOB_COUNTERS.values()),
}


class NotReplayable(BatchrecsError):
    """The job's export cannot be replayed (it has not finished, or never had output)."""


def replay_export(job: Job, jobs: JobStore, events: EventPublisher, clock: Callable[[], str]) -> Job:
    """Start the export of ``job`` (EXPORTED or EXPORT_FAILED) again; the job as it now is."""
    if job.status not in REPLAYABLE:
        raise NotReplayable(
            f"job {job.jobName} is {job.status}: only an EXPORTED or EXPORT_FAILED job is exported again"
            " (or an ACTIVE one whose export did not start)"
        )
    if job.parts:
        for name in job.parts:
            part = jobs.get(name)
            if part is not None and part.status in REPLAYABLE:
                replay_export(part, jobs, events, clock)
        waiting = job.moved_to(IN_PARTS, clock(), **_CLEARED)
        jobs.save(waiting, expected_status=job.status)
        return waiting
    if not job.outputPath:
        raise NotReplayable(f"job {job.jobName} has no output to export")
    active = job.moved_to(ACTIVE, clock(), **_CLEARED)
    # saved before it is published (not after, as a status Personalize reports is): a planner that got the
    # event first would find the job EXPORTED and do nothing. An event lost after the save leaves the job
    # ACTIVE, which the monitor reports as stuck, and a replay again publishes it.
    try:
        jobs.save(active, expected_status=job.status)
    except JobConflictError as exc:
        raise NotReplayable(f"job {job.jobName} changed while it was being replayed: try again") from exc
    events.publish(JOB_STATE_CHANGE, active.state_change())
    return active
