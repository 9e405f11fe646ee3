"""The interfaces the domain code depends on. ``batchrecs.aws`` implements them with boto3;
tests implement them with recording fakes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the ports name domain types but import none at run time: nothing here runs back up
    from pydantic import BaseModel

    from batchrecs.formats.events import ChunkMessage
    from batchrecs.jobs.model import Inflight, Job
    from batchrecs.jobs.progress import Advance, ChunkCounts, ChunkWork
    from batchrecs.routes.config import JobKind, Route


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

    def record_chunk(self, job_name: str, chunk_id: str, counts: Mapping[str, int]) -> Job | None:
        """Add a finished chunk's counts to the job once; None if that chunk was already counted."""
        ...

    def set_chunks_total(self, job_name: str, total: int) -> None:
        """Record the export plan once, without touching the chunks workers have already counted."""
        ...

    def record_chunk_failure(self, job_name: str, chunk_id: str, reason: str) -> Job:
        """Mark a chunk as given up (dead-lettered): the job is EXPORT_FAILED until it is re-driven."""
        ...

    def latest_export_before(self, job: Job) -> Job | None:
        """The route's newest EXPORTED job older than ``job`` (the export ``replacePrevious`` replaces)."""
        ...

    def newer_upload_exporting(self, job: Job) -> str | None:
        """The name of a job of a newer upload of ``job``'s key (``Job.age``) that started exporting."""
        ...

    def note_chunk_retry(self, job_name: str, reason: str) -> None:
        """Show on the job, at once, why one of its chunks failed and when it is tried again."""
        ...


class ChunkQueue(Protocol):
    def send(self, messages: list[ChunkMessage]) -> None: ...

    def retry_later(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message, which failed, visible again only after ``seconds``."""
        ...


class ObjectWriter(Protocol):
    """A streaming upload: ``write`` parts, then ``close`` to publish the object or ``abort``."""

    bytes_written: int

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class ObjectInfo(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def etag(self) -> str: ...


class ObjectStore(Protocol):
    def iter_chunks(
        self, bucket: str, key: str, version_id: str | None = None, if_match: str | None = None
    ) -> Iterator[bytes]:
        """Stream the object; with ``version_id`` or ``if_match``, only if it is still that object
        (else ``ObjectChangedError``)."""
        ...

    def iter_range(self, bucket: str, key: str, start: int, if_match: str) -> Iterator[bytes]:
        """Stream the object from byte ``start`` to its end, only if its ETag is still ``if_match``."""
        ...

    def list_keys(self, bucket: str, prefix: str, suffix: str = "") -> list[str]: ...

    def list_objects(self, bucket: str, prefix: str, suffix: str = "") -> Sequence[ObjectInfo]: ...

    def put_json(self, bucket: str, key: str, value: Mapping[str, Any]) -> None: ...

    def writer(self, bucket: str, key: str, content_type: str) -> ObjectWriter: ...


@dataclass(frozen=True)
class SolutionVersions:
    """A solution's versions as the service lists them: the newest ACTIVE one (None: none is) and how
    many versions are in each status."""

    newest_active: str | None
    statuses: Mapping[str, int]


class PersonalizeJobs(Protocol):
    def create(self, kind: JobKind, request: Mapping[str, Any]) -> str:
        """Start a batch inference or segment job; return its ARN.

        Raises ``PersonalizeLimitExceeded`` or ``PersonalizeUnavailable`` (not now), ``PersonalizeJobExists``
        or ``PersonalizeRejected`` (no).
        """
        ...

    def describe(self, kind: JobKind, job_arn: str) -> tuple[str, str | None]:
        """The job's status and failure reason."""
        ...

    def solution_versions(self, solution_arn: str) -> SolutionVersions:
        """The solution's versions (all pages). Raises ``PersonalizeRejected`` for a solution that does
        not exist, ``PersonalizeUnavailable`` when the service does not answer."""
        ...

    def start_data_import(
        self, name: str, dataset_arn: str, data_location: str, role_arn: str, mode: str
    ) -> str:
        """Start a dataset import job named ``name`` (or find the one already started); its ARN."""
        ...

    def start_training(self, solution_arn: str, mode: str, name: str) -> str:
        """Start training a solution version named ``name`` (or find the one already started); its ARN."""
        ...

    def step_status(self, arn: str) -> tuple[str, str | None]:
        """A dataset import job's or a solution version's status and failure reason."""
        ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: BaseModel) -> None: ...


class RecordSink(Protocol):
    """Where export records go. ``put`` may buffer; ``flush`` writes everything buffered (or raises);
    ``close`` releases the sink, writing nothing more.

    ``written`` counts records acknowledged, ``superseded`` records replaced by a later one for the
    same key before being sent, ``retries`` the backoffs taken, ``throttles`` the throttled sends.
    """

    written: int
    superseded: int
    retries: int

    @property
    def throttles(self) -> int: ...

    def put(self, key: tuple[str, str], item: bytes) -> None: ...

    def delete(self, key: tuple[str, str]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Destination(Protocol):
    """Where a route's records go (``batchrecs.sinks.<type>``), at the moments an export has.

    The export worker hands each chunk's parsed lines down to ``write_chunk``; when the last chunk is
    counted it asks ``after_last_chunk`` where the job goes (EXPORTED, or on to a further step such as
    SES's IMPORTING); then each monitor tick calls ``advance`` until it reports an outcome.
    """

    def write_chunk(self, work: ChunkWork) -> ChunkCounts:
        """Deliver the chunk's lines; return its counts (``work.counts``, filled in)."""
        ...

    def remove_chunk(self, route: Route, ids: Iterable[str], counts: ChunkCounts) -> ChunkCounts:
        """Remove the route's records of ``ids`` (a replaced export's leftovers); fill ``counts``."""
        ...

    def after_last_chunk(self, job: Job, now: str) -> Job | None:
        """None when the export is done once its chunks are written (the job becomes EXPORTED);
        else the job moved to this destination's next step, its state from an earlier run cleared."""
        ...

    def advance(self, job: Job, route: Route) -> Advance:
        """One step after the chunks (e.g. start or poll import jobs); raise if there is none."""
        ...
