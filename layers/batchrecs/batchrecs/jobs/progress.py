"""What one export chunk did, and the work a destination is handed for it.

The count names here are the ones the job store adds up on the job (``record_chunk``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from batchrecs.formats.events import ChunkMessage
from batchrecs.formats.output_lines import OutLine, SegmentLine
from batchrecs.jobs.model import Job
from batchrecs.routes.config import Route

# A chunk's counts, by name, and the job attribute each is added up in (once per chunk).
JOB_COUNTERS = {
    "lines": "exportLines",
    "written": "exportWritten",
    "failed": "exportFailed",
    "records": "exportRecords",
    "missing": "exportMissing",
    "throttles": "exportThrottles",
    "superseded": "exportSuperseded",
    "removed": "exportRemoved",
    "below_theme": "exportBelowThemeScore",
}


@dataclass
class ChunkCounts:
    lines: int = 0
    written: int = 0  # lines whose records are all stored
    failed: int = 0
    records: int = 0  # items stored (or SES contacts staged): one per line, or per user of a segment line
    missing: int = 0  # SES: users without an e-mail address (counted and reported, not failed)
    retries: int = 0  # backoffs and throttled sends: logged per chunk, not kept on the job
    throttles: int = 0  # throttled BatchWriteItem calls (items retried until stored): added up on the job
    superseded: int = 0  # lines not written: a newer job of the route exports (newest job wins)
    removed: int = 0  # records deleted: ids of the previous export not in this one (replacePrevious)
    below_theme: int = 0  # themes: items left out of records, their relevance below minThemeScore

    def to_json(self) -> dict[str, int]:
        """The counts the job adds up (``JOB_COUNTERS``); ``retries`` are only logged."""
        return {name: getattr(self, name) for name in JOB_COUNTERS}


@dataclass
class ChunkWork:
    """One chunk for a destination: its usable lines, parsed, as the worker reads them.

    ``lines`` yields ``(byte offset, parsed line)``; unusable lines are counted in ``counts`` and reported
    by the worker before they are skipped. A line the destination cannot use either goes to ``fail``
    (counted failed, reported with its offset and reason). The destination fills the other counts.
    """

    message: ChunkMessage
    route: Route
    generated_at: datetime
    lines: Iterator[tuple[int, OutLine | SegmentLine]]
    counts: ChunkCounts
    fail: Callable[[int, str], None]
    solution_version: str | None = None  # the model the job ran: on every record

    @property
    def job_name(self) -> str:
        return self.message.jobName


@dataclass(frozen=True)
class Advance:
    """A monitor tick's step of a destination that finishes after its chunks (SES imports)."""

    job: Job  # the job with what the step recorded (to be saved)
    outcome: str | None = None  # EXPORTED or EXPORT_FAILED once the destination is done; None: next tick
    failure: str | None = None


def themed(line: OutLine, route: Route, counts: ChunkCounts) -> OutLine:
    """A theme line without the items below the route's ``minThemeScore`` (counted in ``counts``)."""
    if route.themes is None or route.themes.minThemeScore is None:
        return line
    kept, below = line.above(route.themes.minThemeScore)
    counts.below_theme += below
    return kept
