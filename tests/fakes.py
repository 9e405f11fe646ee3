"""Recording fakes of batchrecs' ports (``batchrecs.ports``), shared by the unit tests.

Each keeps what it was given so a test can assert on it, and behaves like its adapter where the domain
code depends on it (a job store's conditional saves and once-only chunk counts, an object store's
ETag-checked ranges).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchrecs.errors import JobConflictError, ObjectChangedError, PersonalizeRejected
from batchrecs.formats.events import ChunkMessage
from batchrecs.jobs.model import EXPORT_FAILED, Inflight, Job
from batchrecs.jobs.parts import same_upload
from batchrecs.jobs.progress import JOB_COUNTERS, Advance, ChunkCounts, ChunkWork
from batchrecs.ports import SolutionVersions
from batchrecs.routes.config import JobKind, Route
from pydantic import BaseModel


class FakeJobStore:
    """The jobs table: conditional saves, once-only chunk counts, the inflight index."""

    def __init__(self, *jobs: Job) -> None:
        self.jobs: dict[str, Job] = {job.jobName: job for job in jobs}
        self.saves: list[Job] = []

    def claim(self, job: Job) -> Job:
        return self.jobs.setdefault(job.jobName, job)

    def get(self, job_name: str) -> Job | None:
        return self.jobs.get(job_name)

    def save(self, job: Job, expected_status: str) -> None:
        stored = self.jobs.get(job.jobName)
        if stored is None or stored.status != expected_status:
            raise JobConflictError(f"job {job.jobName} is no longer {expected_status}")
        self.jobs[job.jobName] = job
        self.saves.append(job)

    def inflight(self, state: Inflight) -> Iterator[Job]:
        yield from sorted((j for j in self.jobs.values() if j.inflight == state), key=lambda j: j.createdAt)

    def record_chunk(self, job_name: str, chunk_id: str, counts: Mapping[str, int]) -> Job | None:
        job = self.jobs[job_name]
        if chunk_id in (job.chunksDone or ()):
            return None
        update: dict[str, Any] = {
            attribute: (getattr(job, attribute) or 0) + int(counts.get(name, 0))
            for name, attribute in JOB_COUNTERS.items()
        }
        update["chunksDone"] = {*(job.chunksDone or ()), chunk_id}
        update["chunksFailed"] = (job.chunksFailed or set()) - {chunk_id} or None
        self.jobs[job_name] = job.model_copy(update=update)
        return self.jobs[job_name]

    def set_chunks_total(self, job_name: str, total: int) -> None:
        job = self.jobs[job_name]
        if job.chunksTotal is None:
            self.jobs[job_name] = job.model_copy(update={"chunksTotal": total})

    def latest_export_before(self, job: Job) -> Job | None:
        older = [
            o
            for o in self.jobs.values()
            if o.route == job.route and o.age < job.age and o.status == "EXPORTED" and o.partOf is None
        ]
        return max(older, key=lambda other: other.age, default=None)

    def newer_upload_exporting(self, job: Job) -> str | None:
        newer = [
            other.jobName
            for other in self.jobs.values()
            if other.sourceKey == job.sourceKey
            and other.age > job.age
            and other.chunksTotal is not None
            and not same_upload(job, other)
        ]
        return newer[0] if newer else None

    def note_chunk_retry(self, job_name: str, reason: str) -> None:
        self.jobs[job_name] = self.jobs[job_name].model_copy(update={"chunkRetry": reason})

    def record_chunk_failure(self, job_name: str, chunk_id: str, reason: str) -> Job:
        job = self.jobs[job_name]
        self.jobs[job_name] = job.model_copy(
            update={
                "chunksFailed": {*(job.chunksFailed or ()), chunk_id},
                "status": EXPORT_FAILED,
                "failureReason": reason,
            }
        )
        return self.jobs[job_name]


@dataclass(frozen=True)
class FakeObjectInfo:
    key: str
    size: int
    etag: str


class FakeWriter:
    def __init__(self, objects: FakeObjects, bucket: str, key: str) -> None:
        self._objects, self._bucket, self._key = objects, bucket, key
        self._parts: list[bytes] = []
        self.bytes_written = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self.bytes_written += len(data)

    def close(self) -> None:
        self._objects.put(self._bucket, self._key, b"".join(self._parts))

    def abort(self) -> None:
        self.aborted = True


class FakeObjects:
    """An in-memory bucket (or several): objects by (bucket, key), ETags from their bytes."""

    def __init__(self, chunk_size: int = 1 << 20) -> None:
        self.data: dict[tuple[str, str], bytes] = {}
        self.chunk_size = chunk_size

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.data[(bucket, key)] = body

    def etag(self, bucket: str, key: str) -> str:
        return hashlib.md5(self.data[(bucket, key)]).hexdigest()  # noqa: S324 - an ETag, not security

    def read(self, bucket: str, key: str) -> bytes:
        return self.data[(bucket, key)]

    def json(self, bucket: str, key: str) -> Any:
        return json.loads(self.data[(bucket, key)])

    def iter_chunks(
        self, bucket: str, key: str, version_id: str | None = None, if_match: str | None = None
    ) -> Iterator[bytes]:
        """One version per key: ``if_match`` is checked against it, ``version_id`` is not kept."""
        if if_match is not None and ((bucket, key) not in self.data or self.etag(bucket, key) != if_match):
            raise ObjectChangedError(f"{key} changed or was deleted since it was uploaded")
        body = self.data[(bucket, key)]
        for start in range(0, len(body), self.chunk_size):
            yield body[start : start + self.chunk_size]

    def iter_range(self, bucket: str, key: str, start: int, if_match: str) -> Iterator[bytes]:
        if self.etag(bucket, key) != if_match:
            raise ObjectChangedError(f"{key} changed since it was planned")
        body = self.data[(bucket, key)]
        for offset in range(start, len(body), self.chunk_size):
            yield body[offset : offset + self.chunk_size]

    def list_keys(self, bucket: str, prefix: str, suffix: str = "") -> list[str]:
        return sorted(k for b, k in self.data if b == bucket and k.startswith(prefix) and k.endswith(suffix))

    def list_objects(self, bucket: str, prefix: str, suffix: str = "") -> Sequence[FakeObjectInfo]:
        return [
            FakeObjectInfo(key, len(self.data[(bucket, key)]), self.etag(bucket, key))
            for key in self.list_keys(bucket, prefix, suffix)
        ]

    def put_json(self, bucket: str, key: str, value: Mapping[str, Any]) -> None:
        self.put(bucket, key, json.dumps(value).encode())

    def writer(self, bucket: str, key: str, content_type: str) -> FakeWriter:
        return FakeWriter(self, bucket, key)


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[ChunkMessage] = []
        self.delayed: list[tuple[str, int]] = []  # (receipt handle, seconds)

    def send(self, messages: list[ChunkMessage]) -> None:
        self.sent.extend(messages)

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        self.delayed.append((receipt_handle, seconds))


class FakeEvents:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        self.published.append((detail_type, detail.model_dump()))

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [detail for kind, detail in self.published if kind == detail_type]


class FakePersonalize:
    """Batch jobs: ``create`` records the request (or raises what ``create_errors`` holds, in turn);
    ``describe`` answers from ``statuses`` (job ARN -> (status, reason))."""

    def __init__(self) -> None:
        self.created: list[tuple[JobKind, dict[str, Any]]] = []
        self.create_errors: list[Exception] = []
        self.statuses: dict[str, tuple[str, str | None]] = {}
        # solution ARN -> (version ARN, status), oldest first
        self.versions: dict[str, list[tuple[str, str]]] = {}
        # refresh steps: what was started (once per name), what each reports, and errors to raise in turn
        self.started: dict[str, tuple[str, ...]] = {}  # ARN -> the call's arguments
        self.step_statuses: dict[str, tuple[str, str | None]] = {}
        self.step_errors: list[Exception] = []

    def create(self, kind: JobKind, request: Mapping[str, Any]) -> str:
        if self.create_errors:
            raise self.create_errors.pop(0)
        self.created.append((kind, dict(request)))
        prefix = "batch-segment-job" if kind.is_segment else "batch-inference-job"
        return f"arn:aws:personalize:us-east-1:123456789012:{prefix}/{request['jobName']}"

    def describe(self, kind: JobKind, job_arn: str) -> tuple[str, str | None]:
        return self.statuses[job_arn]

    def start_data_import(
        self, name: str, dataset_arn: str, data_location: str, role_arn: str, mode: str
    ) -> str:
        if self.step_errors:
            raise self.step_errors.pop(0)
        arn = f"arn:aws:personalize:us-east-1:123456789012:dataset-import-job/{name}"
        self.started.setdefault(arn, (dataset_arn, data_location, role_arn, mode))  # a name is one job
        return arn

    def start_training(self, solution_arn: str, mode: str, name: str) -> str:
        if self.step_errors:
            raise self.step_errors.pop(0)
        arn = f"{solution_arn}/{name}"
        self.started.setdefault(arn, (solution_arn, mode))
        return arn

    def step_status(self, arn: str) -> tuple[str, str | None]:
        return self.step_statuses.get(arn, ("CREATE IN_PROGRESS", None))

    def solution_versions(self, solution_arn: str) -> SolutionVersions:
        versions = self.versions.get(solution_arn)
        if versions is None:
            raise PersonalizeRejected(f"ResourceNotFoundException: no solution {solution_arn}")
        active = [arn for arn, status in versions if status == "ACTIVE"]  # listed oldest first
        return SolutionVersions(active[-1] if active else None, dict(Counter(s for _, s in versions)))


@dataclass
class FakeDestination:
    """A destination that records each chunk's lines (offset, key of the parsed line) and counts them;
    after the last chunk the job is done, or moves to ``goes_on``."""

    goes_on: str | None = None
    chunks: list[tuple[str, list[tuple[int, str]]]] = field(default_factory=list)
    advances: list[Advance] = field(default_factory=list)  # what ``advance`` answers, in turn
    fail_on: set[str] = field(default_factory=set)  # line keys to report as unusable

    def write_chunk(self, work: ChunkWork) -> ChunkCounts:
        seen = []
        for offset, parsed in work.lines:
            key = getattr(parsed, "key", None) or getattr(parsed, "segment", "")
            if key in self.fail_on:
                work.fail(offset, f"{key} is not wanted here")
                continue
            seen.append((offset, key))
        self.chunks.append((work.message.chunkId, seen))
        work.counts.written = work.counts.lines - work.counts.failed
        work.counts.records = len(seen)
        return work.counts

    def after_last_chunk(self, job: Job, now: str) -> Job | None:
        return job.moved_to(self.goes_on, now) if self.goes_on else None

    def advance(self, job: Job, route: Route) -> Advance:
        return self.advances.pop(0)
