"""An upload run as several jobs: its parts, and the one outcome of the upload once each part has ended.

Submit stages an upload past one job's limits (1 GB, 50M lines, or the route's ``maxLinesPerJob``) as
parts and starts a job per part (``<upload job>-p<n>-...``, ``partOf`` the upload's job), each of which
runs and exports as any job does. The upload's own job waits IN PARTS; the monitor ends it once every
part has ended (``combined``): EXPORTED when every part exported, else EXPORT_FAILED naming the parts
that did not; its counts are the sums of its parts', and its ``Batch Export Completed`` event is the
one for the whole upload (each part's is ``Batch Export Part Completed``).
"""

from __future__ import annotations

from collections.abc import Sequence

from batchrecs.export.progress import export_counts
from batchrecs.formats.events import PartOutcome
from batchrecs.jobs.model import CREATE_FAILED, EXPORT_FAILED, EXPORTED, REJECTED, Job

ENDED = (EXPORTED, EXPORT_FAILED, REJECTED, CREATE_FAILED)
_SUMMED = (
    "chunksTotal",
    "exportLines",
    "exportWritten",
    "exportFailed",
    "exportRecords",
    "exportMissing",
    "exportThrottles",
    "exportSuperseded",
    "exportRemoved",
    "exportBelowThemeScore",
)


def same_upload(job: Job, other: Job) -> bool:
    """Whether two jobs run the same upload (the upload's own job and its parts)."""
    ones = {job.jobName, job.partOf} - {None}
    return bool(ones & ({other.jobName, other.partOf} - {None}))


def all_ended(parts: Sequence[Job]) -> bool:
    return all(part.status in ENDED for part in parts)


def combined(upload: Job, parts: Sequence[Job]) -> tuple[Job, str, str | None]:
    """The upload's job with its parts' counts summed, its outcome, and why it failed (if it did)."""
    sums = {name: sum(getattr(part, name) or 0 for part in parts) for name in _SUMMED}
    contacts = [part.contactImport for part in parts if part.contactImport is not None]
    if contacts:
        keys = {key for counts in contacts for key, value in counts.items() if isinstance(value, int)}
        sums["contactImport"] = {key: sum(counts.get(key, 0) for counts in contacts) for key in sorted(keys)}
    versions = {part.solutionVersionArn for part in parts if part.solutionVersionArn}
    job = upload.model_copy(
        update={**sums, "solutionVersionArn": versions.pop() if len(versions) == 1 else None}
    )
    failed = [
        f"part {number} of {len(parts)} ({part.jobName}) {part.status}: "
        f"{part.failureReason or 'no reason given'}"
        for number, part in enumerate(parts, 1)
        if part.status != EXPORTED
    ]
    return job, (EXPORT_FAILED if failed else EXPORTED), ("; ".join(failed) or None)


def outcomes(parts: Sequence[Job]) -> list[PartOutcome]:
    """How each part ended, for the upload's completion event."""
    return [
        PartOutcome(
            jobName=part.jobName,
            status=part.status,
            lines=part.exportLines or 0,
            recordsWritten=part.exportRecords or 0,
            failureReason=part.failureReason,
            errorsReport=export_counts(part)["errorsReport"],
        )
        for part in parts
    ]
