"""Byte-range chunks of a .out file, and the lines each chunk owns.

A chunk ``[start, end)`` owns every line whose first byte lies in it. A worker reads from
``start - 1`` (so it can tell whether a line begins exactly at ``start``), drops everything up to and
including the first newline, then yields lines until one begins at or after ``end``. Every line is
owned by exactly one chunk, whatever the chunk size, and a line longer than a chunk is read whole
by the chunk it starts in (the chunks it spans without starting in own nothing of it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int


def plan_ranges(size: int, chunk_bytes: int) -> list[ByteRange]:
    """Split ``size`` bytes into consecutive ranges of ``chunk_bytes`` (the last may be shorter)."""
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be positive")
    return [ByteRange(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


def owned_lines(read_from: Callable[[int], Iterable[bytes]], chunk: ByteRange) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for every line ``chunk`` owns; ``read_from(offset)`` streams bytes from offset on.

    Lines lose their LF and a CR before it. Reading stops at the end of the last owned line.
    """
    offset = max(chunk.start - 1, 0)
    skipping = chunk.start > 0  # the bytes up to the first newline belong to an earlier chunk
    parts: list[bytes] = []
    line_start = offset
    position = offset
    for data in read_from(offset):
        cursor = 0
        while cursor < len(data):
            newline = data.find(b"\n", cursor)
            if newline == -1:
                parts.append(data[cursor:])
                position += len(data) - cursor
                break
            parts.append(data[cursor:newline])
            position += newline - cursor + 1
            cursor = newline + 1
            line = b"".join(parts)
            parts = []
            if skipping:
                skipping = False
            else:
                if line_start >= chunk.end:
                    return
                yield line_start, line[:-1] if line.endswith(b"\r") else line
            line_start = position
    if parts and not skipping and line_start < chunk.end:
        line = b"".join(parts)
        yield line_start, line[:-1] if line.endswith(b"\r") else line
