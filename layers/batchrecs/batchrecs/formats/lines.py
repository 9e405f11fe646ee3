"""Split a stream of byte chunks into lines without holding more than one line in memory."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield the LF-separated lines of ``chunks`` with a trailing CR removed.

    A last line without a newline is yielded too; an empty stream yields nothing. A line longer
    than a chunk is assembled from its parts, so chunk size never cuts a line.
    """
    parts: list[bytes] = []
    for chunk in chunks:
        if not chunk:
            continue
        start = 0
        newline = chunk.find(b"\n")
        while newline != -1:
            if parts:
                parts.append(chunk[start:newline])
                line = b"".join(parts)
                parts = []
            else:
                line = chunk[start:newline]
            yield line[:-1] if line.endswith(b"\r") else line
            start = newline + 1
            newline = chunk.find(b"\n", start)
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts:
        line = b"".join(parts)
        yield line[:-1] if line.endswith(b"\r") else line


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
