"""The byte-range splitter reproduces every line exactly once, whatever the chunk size."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from batchrecs.export.chunks import ByteRange, owned_lines, plan_ranges


def _reader(data: bytes, piece: int) -> object:
    def read_from(offset: int) -> Iterator[bytes]:
        for start in range(offset, len(data), piece):
            yield data[start : start + piece]

    return read_from


def _all_lines(data: bytes, chunk_bytes: int, piece: int = 7) -> list[tuple[int, bytes]]:
    lines: list[tuple[int, bytes]] = []
    for chunk in plan_ranges(len(data), chunk_bytes):
        lines.extend(owned_lines(_reader(data, piece), chunk))  # type: ignore[arg-type]
    return lines


def _expected(data: bytes) -> list[tuple[int, bytes]]:
    """Reference: split the whole file, with each line's starting offset."""
    out, offset = [], 0
    for raw in data.split(b"\n"):
        if offset < len(data):
            out.append((offset, raw[:-1] if raw.endswith(b"\r") else raw))
        offset += len(raw) + 1
    return out


FILES = {
    "plain": b'{"a":1}\n{"b":22}\n{"c":333}\n',
    "no trailing newline": b'{"a":1}\n{"b":22}\n{"c":333}',
    "crlf": b'{"a":1}\r\n{"b":22}\r\n{"c":333}\r\n',
    "blank lines": b"\n\nx\n\n\ny\n\n",
    "one long line": b"short\n" + b"L" * 500 + b"\nend\n",
    "only newlines": b"\n\n\n",
    "single line no newline": b"just-one-line",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 8, 17, 64, 499, 500, 501, 10_000])
def test_every_line_is_owned_by_exactly_one_chunk(name: str, chunk_bytes: int) -> None:
    data = FILES[name]
    assert _all_lines(data, chunk_bytes) == _expected(data)


@pytest.mark.parametrize("piece", [1, 3, 4096])
def test_read_piece_size_does_not_matter(piece: int) -> None:
    data = FILES["one long line"] + FILES["crlf"]
    assert _all_lines(data, 13, piece=piece) == _expected(data)


def test_reading_stops_after_the_last_owned_line() -> None:
    # Given a file of 1000 lines and a chunk covering the first line only
    data = b"".join(b"line-%04d\n" % i for i in range(1000))
    consumed: list[int] = []

    def read_from(offset: int) -> Iterator[bytes]:
        for start in range(offset, len(data), 10):
            consumed.append(start)
            yield data[start : start + 10]

    # When its lines are read, Then only a few pieces past the chunk were fetched
    assert [line for _, line in owned_lines(read_from, ByteRange(0, 5))] == [b"line-0000"]
    assert len(consumed) <= 3


def test_plan_covers_the_file_without_gaps() -> None:
    ranges = plan_ranges(100, 30)
    assert [(r.start, r.end) for r in ranges] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert plan_ranges(0, 30) == []
    with pytest.raises(ValueError, match="positive"):
        plan_ranges(10, 0)
