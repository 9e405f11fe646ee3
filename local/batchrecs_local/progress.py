"""How a waiting command shows one job's progress on stderr.

On a terminal, one line drawn again in place at every poll: the job, its status, a bar of its export
chunks done of all, the records stored, and the time since the wait began. Anywhere else (a pipe, a
log, CI), a plain line each time the status, the chunks or the records change, so a log reads as a
history and holds no control characters."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

BAR_WIDTH = 20


@dataclass(frozen=True)
class Shown:
    job: str
    status: str
    chunks_done: int
    chunks_total: int | None
    records: int | None

    @classmethod
    def of(cls, job: Any) -> Shown:
        """From a ``Job`` or a job item as the jobs table holds it."""
        get = job.get if isinstance(job, dict) else lambda name: getattr(job, name)
        total = get("chunksTotal")
        records = get("exportRecords")
        return cls(
            str(get("jobName")),
            str(get("status")),
            len(get("chunksDone") or ()),
            None if total is None else int(total),
            None if records is None else int(records),
        )


class JobProgress:
    def __init__(
        self, stream: TextIO, clock: Callable[[], float] = time.monotonic, terminal: bool | None = None
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._terminal = stream.isatty() if terminal is None else terminal
        self._last: Shown | None = None
        self._drawn = False

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def show(self, job: Any) -> None:
        shown = Shown.of(job)
        if self._terminal:
            self._stream.write("\r" + self.bar(shown) + "\x1b[K")  # then clear what a longer line left
            self._drawn = True
        elif shown != self._last:
            self._stream.write(self.line(shown) + "\n")
        self._stream.flush()
        self._last = shown

    def end(self) -> None:
        """Leave the bar's last state on its own line."""
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def bar(self, shown: Shown) -> str:
        total = shown.chunks_total
        filled = round(BAR_WIDTH * shown.chunks_done / total) if total else 0
        chunks = f"{shown.chunks_done}/{total}" if total is not None else "-/-"
        return (
            f"{shown.job}  {shown.status:<18} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] "
            f"{chunks} chunks  {shown.records or 0:,} records  {self._elapsed()}"
        )

    def line(self, shown: Shown) -> str:
        chunks = (
            f" chunks {shown.chunks_done}/{shown.chunks_total}, {shown.records or 0:,} records"
            if shown.chunks_total is not None
            else ""
        )
        return f"  {shown.job}: {shown.status}{chunks} ({self._elapsed()})"

    def _elapsed(self) -> str:
        seconds = int(self._clock() - self._started)
        return f"{seconds // 60}:{seconds % 60:02d}"
