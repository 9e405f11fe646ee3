"""Split a stream of byte chunks into lines without holding more than one line in memory."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the LF-separated lines of ``chunks`` with a trailing CR removed.

    A last line without a newline is yielded too; an empty stream yields nothing. A line longer
    than a chunk is assembled from its parts, so chunk size never cuts a line.
    """
    yield from iter_bounded_lines(chunks, max_bytes=None)  # type: ignore[misc]  # unbounded: no LongLine


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than the bound, read past without being held: its length in bytes."""

    length: int


def iter_bounded_lines(chunks: Iterable[bytes], max_bytes: int | None) -> Iterator[bytes | LongLine]:
    """As ``iter_lines``, but a line of more than ``max_bytes`` is yielded as its ``LongLine``: at most
    ``max_bytes`` (and the chunk being read) are ever held."""
    limit = max_bytes if max_bytes is not None else -1
    parts: list[bytes] = []
    held = 0
    skipped = -1  # the length so far of a line too long to hold, while reading past it
    for chunk in chunks:
        if not chunk:
            continue
        start = 0
        newline = chunk.find(b"\n")
        while newline != -1:
            if skipped >= 0:
                line: bytes | LongLine = LongLine(skipped + newline - start)
                skipped = -1
            elif parts:
                parts.append(chunk[start:newline])
                line = b"".join(parts)
                parts, held = [], 0
            else:
                line = chunk[start:newline]
            if isinstance(line, bytes):
                line = line[:-1] if line.endswith(b"\r") else line
                if limit >= 0 and len(line) > limit:
                    line = LongLine(len(line))
            yield line
            start = newline + 1
            newline = chunk.find(b"\n", start)
        rest = len(chunk) - start
        if not rest:
            continue
        if skipped >= 0:
            skipped += rest
        elif limit >= 0 and held + rest > limit:
            skipped, parts, held = held + rest, [], 0
        else:
            parts.append(chunk[start:])
            held += rest
    if skipped >= 0:
        yield LongLine(skipped)
    elif parts:
        line = b"".join(parts)
        line = line[:-1] if line.endswith(b"\r") else line
        yield LongLine(len(line)) if limit >= 0 and len(line) > limit else line


class ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (for ``gzip.GzipFile`` and friends)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def iter_file(file: io.RawIOBase | io.BufferedIOBase, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Read ``file`` in chunks of ``chunk_size`` bytes until it ends."""
    while chunk := file.read(chunk_size):
        yield chunk
