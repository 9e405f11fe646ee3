"""The jobs of a stack as operators look at them: recent uploads by route (the route index, newest
first), one job in full (by name, or by the key of its upload through the source index), and an
upload followed to its end. An upload run in parts is one row; its parts are shown under it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from batchrecs import layout
from batchrecs.aws.jobs_table import DynamoDBJobStore
from batchrecs.errors import BatchrecsError
from batchrecs.export.progress import export_counts
from batchrecs.jobs.model import CREATE_FAILED, EXPORT_FAILED, EXPORTED, REJECTED, Job
from batchrecs.operate.stack import Stack

FINAL = (REJECTED, CREATE_FAILED, EXPORTED, EXPORT_FAILED)
FAILED = (REJECTED, CREATE_FAILED, EXPORT_FAILED)


class JobNotFound(BatchrecsError):
    """No job has that name, or no upload of that key has a job (a usage error: exit code 2)."""


def store(stack: Stack) -> DynamoDBJobStore:
    return DynamoDBJobStore(stack.output("JobsTableName"), stack.client("dynamodb"))


def recent(
    jobs: DynamoDBJobStore, routes: Iterable[str], limit: int = 20, status: str | None = None
) -> list[Job]:
    """The newest ``limit`` uploads' jobs of ``routes`` (in ``status``), newest first."""
    rows: list[tuple[str, str, str]] = []
    for route in routes:  # a route's parts are its rows too: read enough of them to find the uploads
        rows += [row for row in jobs.route_jobs(route, limit * 5) if status is None or row[1] == status]
    rows.sort(key=lambda row: (row[2], row[0]), reverse=True)
    found = [job for job in jobs.get_many([name for name, _, _ in rows]) if job.partOf is None]
    return found[:limit]


def find(jobs: DynamoDBJobStore, ref: str) -> Job:
    """The job named ``ref``, or the newest upload's job of ``s3://bucket/input/...``."""
    if ref.startswith("s3://"):
        key = ref.removeprefix("s3://").partition("/")[2]
        uploads = [job for job in jobs.get_many(jobs.uploads_of(key)) if job.partOf is None]
        if not uploads:
            raise JobNotFound(f"no job for {ref}: was it uploaded under input/<route>/ of this stack?")
        return max(uploads, key=lambda job: job.age)
    job = jobs.get(ref)
    if job is None:
        raise JobNotFound(f"no job {ref} in this stack (batchrecs jobs lists the recent ones)")
    return job


def parts_of(jobs: DynamoDBJobStore, job: Job) -> list[Job]:
    return jobs.get_many(job.parts) if job.parts else []


def exit_code(job: Job) -> int:
    """The exit-code table's: 1 for a job that failed, else 0."""
    return 1 if job.status in FAILED else 0


def row(job: Job) -> dict[str, Any]:
    """One line of ``batchrecs jobs``."""
    return {
        "jobName": job.jobName,
        "route": job.route,
        "status": job.status,
        "createdAt": job.createdAt,
        "updatedAt": job.updatedAt,
        "lines": (job.validation or {}).get("valid"),
        "records": job.exportRecords,
        "chunks": _chunks(job),
        "parts": len(job.parts) if job.parts else None,
    }


def detail(job: Job, parts: list[Job]) -> dict[str, Any]:
    """Everything ``batchrecs show`` says of a job."""
    bucket = job.sourceBucket
    counts = job.export or (export_counts(job) if job.chunksTotal is not None else None)
    return {
        **row(job),
        "source": f"s3://{bucket}/{job.sourceKey}",
        "kind": job.kind,
        "history": job.history or [{"status": job.status, "at": job.updatedAt}],
        "validation": job.validation,
        "report": f"s3://{bucket}/{job.reportKey}" if job.reportKey else None,
        "failureReason": job.failureReason,
        "jobArn": job.jobArn,
        "solutionVersionArn": job.solutionVersionArn,
        "stagedPath": job.stagedPath,
        "outputPath": job.outputPath,
        "export": counts,
        "chunksFailed": sorted(job.chunksFailed or ()),
        "chunkRetry": job.chunkRetry,
        "contactImport": job.contactImport,
        "partOf": job.partOf,
        "partJobs": [row(part) for part in parts],
    }


def text(detail: dict[str, Any]) -> str:
    """``batchrecs show`` for a terminal."""
    lines = [
        f"{detail['jobName']}  {detail['status']}",
        f"  route {detail['route']} ({detail['kind']}), from {detail['source']}",
    ]
    lines += [f"  {entry['at']}  {entry['status']}" for entry in detail["history"]]
    if detail["validation"]:
        lines.append("  validation " + ", ".join(f"{k} {v:,}" for k, v in detail["validation"].items()))
    for label in ("report", "stagedPath", "outputPath", "solutionVersionArn", "failureReason"):
        if detail[label]:
            lines.append(f"  {label} {detail[label]}")
    if detail["chunks"]:
        lines.append(f"  chunks {detail['chunks']}, records {detail['records'] or 0:,}")
    if detail["export"]:
        shown = {k: v for k, v in detail["export"].items() if v not in (None, 0, []) and k != "parts"}
        lines.append("  export " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    if detail["chunksFailed"]:
        lines.append(f"  chunks failed {', '.join(detail['chunksFailed'])}: batchrecs redrive")
    if detail["chunkRetry"]:
        lines.append(f"  last chunk retry {detail['chunkRetry']}")
    for part in detail["partJobs"]:
        lines.append(
            f"  part {part['jobName']}  {part['status']}  lines {part['lines']}  chunks {part['chunks']}"
        )
    return "\n".join(lines)


def submit(stack: Stack, file: Path, route: str) -> tuple[str, set[str]]:
    """Upload ``file`` to the route's prefix; its key, and the jobs its key had before."""
    key = f"{layout.INPUT}{route}/{file.name}"
    jobs = store(stack)
    before = set(jobs.uploads_of(key))
    stack.client("s3").upload_file(str(file), stack.output("DataBucketName"), key)
    return key, before


def new_upload(jobs: DynamoDBJobStore, key: str, before: set[str]) -> Callable[[], Job | None]:
    """The job of the upload of ``key`` that is not among ``before`` (None until it appears)."""

    def lookup() -> Job | None:
        new = [name for name in jobs.uploads_of(key) if name not in before]
        uploads = [job for job in jobs.get_many(new) if job.partOf is None]
        return max(uploads, key=lambda found: found.age) if uploads else None

    return lookup


def follow(
    lookup: Callable[[], Job | None],
    timeout: float,
    report: Callable[[Job], None],
    poll_seconds: float = 1.0,
) -> Job:
    """Wait for the job ``lookup`` finds to end, ``report``-ing it at every poll (a progress display
    draws a bar each time, or prints a line when something changed). ``TimeoutError`` (exit code 3)
    when it has not ended within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = lookup()
        if job is not None:
            report(job)
            if job.status in FINAL:
                return job
        if time.monotonic() > deadline:
            where = f"job {job.jobName} is {job.status}" if job else "no job appeared"
            raise TimeoutError(f"{where} after {timeout:.0f} s (batchrecs show follows it)")
        time.sleep(poll_seconds)


def _chunks(job: Job) -> str | None:
    return f"{len(job.chunksDone or ())}/{job.chunksTotal}" if job.chunksTotal is not None else None
