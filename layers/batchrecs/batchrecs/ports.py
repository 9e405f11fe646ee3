"""The interfaces the domain code depends on. ``batchrecs.aws`` implements them with boto3;
tests implement them with recording fakes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from batchrecs.jobs.model import Inflight, Job
from batchrecs.routes.config import JobKind


class JobStore(Protocol):
    def claim(self, job: Job) -> Job:
        """Store ``job`` unless a job of that name exists; return whichever is stored."""
        ...

    def get(self, job_name: str) -> Job | None: ...

    def save(self, job: Job, expected_status: str) -> None:
        """Replace the stored job if its status is still ``expected_status``; else ``JobConflictError``."""
        ...

    def inflight(self, state: Inflight) -> Iterator[Job]:
        """Jobs waiting to be submitted (QUEUED) or running in Personalize (RUNNING), oldest first."""
        ...


class ObjectWriter(Protocol):
    """A streaming upload: ``write`` parts, then ``close`` to publish the object or ``abort``."""

    bytes_written: int

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    def iter_chunks(self, bucket: str, key: str) -> Iterator[bytes]: ...

    def list_keys(self, bucket: str, prefix: str, suffix: str = "") -> list[str]: ...

    def put_json(self, bucket: str, key: str, value: Mapping[str, Any]) -> None: ...

    def writer(self, bucket: str, key: str, content_type: str) -> ObjectWriter: ...


class PersonalizeJobs(Protocol):
    def create(self, kind: JobKind, request: Mapping[str, Any]) -> str:
        """Start a batch inference or segment job; return its ARN.

        Raises ``PersonalizeLimitExceeded``, ``PersonalizeJobExists`` or ``PersonalizeRejected``.
        """
        ...

    def describe(self, kind: JobKind, job_arn: str) -> tuple[str, str | None]:
        """The job's status and failure reason."""
        ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: BaseModel) -> None: ...


class RecordSink(Protocol):
    """Where export records go. ``put`` may buffer; ``flush`` writes everything buffered.

    ``written`` counts records acknowledged, ``superseded`` records replaced by a later one for the
    same key before being sent, ``retries`` the backoffs taken.
    """

    written: int
    superseded: int
    retries: int

    def put(self, key: tuple[str, str], item: dict[str, Any]) -> None: ...

    def flush(self) -> None: ...
