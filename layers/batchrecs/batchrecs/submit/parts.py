"""Staging an upload as one job's input, or as several parts when it is past one job's limits.

Personalize reads at most 1 GB and 50M records per batch job (a route may ask for fewer lines per job:
``maxLinesPerJob``). The unique lines of an upload past either are cut, in their order, into parts that
each stay within both, the cut always at the end of a line; each part is the input of its own job (see
``jobs.parts``). Which line goes to which part depends only on the lines, so a retried submit stages
the same parts under the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batchrecs.formats.input_files import MAX_INPUT_BYTES, MAX_UPLOAD_PARTS
from batchrecs.ports import ObjectWriter


@dataclass(frozen=True)
class StagedPart:
    lines: int
    bytes: int


class StagedParts:
    """Where an upload's unique lines go: ``open_single()`` when they fit one job, else ``open_part(n)``
    for parts 1, 2, ... (each closed when the next one opens). ``parts`` says what was written in parts
    (empty for a single job); ``refused`` says why an upload was not staged in parts when it could
    not be (nothing is written then)."""

    def __init__(
        self,
        open_single: Callable[[], ObjectWriter],
        open_part: Callable[[int], ObjectWriter],
        max_lines: int,
        max_bytes: int = MAX_INPUT_BYTES,
        refuse_parts: str | None = None,  # why this upload's route cannot run it as several jobs
        max_parts: int = MAX_UPLOAD_PARTS * 25,  # a route with few lines per job still makes few jobs
    ) -> None:
        self._open_single, self.open_part = open_single, open_part
        self.max_lines, self.max_bytes, self.max_parts = max_lines, max_bytes, max_parts
        self._refuse = refuse_parts
        self.parts: list[StagedPart] = []
        self.refused: str | None = None
        self._writer: ObjectWriter | None = None

    def open(self, unique_bytes: int | None = None, unique_lines: int | None = None) -> ObjectWriter:
        """The writer of ``unique_lines`` lines of ``unique_bytes`` bytes (None: a bounded kind's few
        lines, written as they are read: one job)."""
        if (
            unique_bytes is None
            or unique_lines is None
            or (unique_bytes <= self.max_bytes and unique_lines <= self.max_lines)
        ):
            self._writer = self._open_single()
            return self._writer
        # each part but the last is full of lines or (within a line) of bytes: at most this many
        at_most = -(-unique_lines // self.max_lines) + -(-unique_bytes // self.max_bytes)
        if self._refuse is not None or at_most > self.max_parts:
            self.refused = self._refuse or f"at most {self.max_parts} jobs of one upload"
            self._writer = _Discard()
            return self._writer
        self._writer = _Splitter(self)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


class _Splitter:
    """An ObjectWriter over the parts: whole lines go to the current part while it has room."""

    def __init__(self, staged: StagedParts) -> None:
        self._staged = staged
        self._part: ObjectWriter | None = None
        self._lines = self._bytes = 0
        self._rest = b""
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        data = self._rest + data
        end = data.rfind(b"\n") + 1
        data, self._rest = data[:end], data[end:]
        while data:
            cut = self._fitting(data) if self._part is not None else 0
            if cut == 0:  # not one more line fits this part: the next part starts with it
                self._next_part()
                cut = self._fitting(data)
                if cut == 0:
                    raise ValueError("a line longer than a part may be")
            piece = data if cut == len(data) else data[:cut]
            assert self._part is not None
            self._part.write(piece)
            self._lines += piece.count(b"\n")
            self._bytes += cut
            self.bytes_written += cut
            data = data[cut:]

    def _fitting(self, data: bytes) -> int:
        """How many bytes of ``data`` (whole lines) the current part still takes."""
        room_lines = self._staged.max_lines - self._lines
        room_bytes = self._staged.max_bytes - self._bytes
        if len(data) <= room_bytes and data.count(b"\n") <= room_lines:
            return len(data)
        cut = data.rfind(b"\n", 0, room_bytes) + 1  # whole lines within the bytes left
        position = 0
        for _ in range(room_lines):  # ... and within the lines left (only where a part ends)
            position = data.find(b"\n", position, cut) + 1
            if position == 0:
                return cut
        return position

    def _next_part(self) -> None:
        if self._part is not None:
            self._part.close()
            self._staged.parts.append(StagedPart(self._lines, self._bytes))
        number = len(self._staged.parts) + 1
        if number > self._staged.max_parts:
            raise ValueError(f"more than {self._staged.max_parts} parts")
        self._part = self._staged.open_part(number)
        self._lines = self._bytes = 0

    def close(self) -> None:
        if self._rest:
            raise ValueError("the staged lines did not end with a newline")
        if self._part is not None:
            self._part.close()
            self._staged.parts.append(StagedPart(self._lines, self._bytes))
            self._part = None

    def abort(self) -> None:
        if self._part is not None:
            self._part.abort()
            self._part = None


class _Discard:
    """Writes nothing (an upload that cannot be staged as it is)."""

    bytes_written = 0

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
