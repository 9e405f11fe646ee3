from __future__ import annotations

import gzip
import io

import pytest
from batchrecs.formats.lines import ChunkReader, iter_file, iter_lines

from tests.conftest import chunked

TEXT = b"first\r\nsecond\n\nlong" + b"x" * 100 + b"\nlast"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000])
def test_lines_are_the_same_whatever_the_chunk_size(size: int) -> None:
    assert list(iter_lines(chunked(TEXT, size))) == [b"first", b"second", b"", b"long" + b"x" * 100, b"last"]


def test_trailing_newline_adds_no_empty_line_and_empty_stream_yields_nothing() -> None:
    assert list(iter_lines([b"a\n", b"b\n"])) == [b"a", b"b"]
    assert list(iter_lines([])) == []
    assert list(iter_lines([b"", b""])) == []


def test_chunk_reader_feeds_gzip() -> None:
    packed = gzip.compress(TEXT)
    with gzip.GzipFile(fileobj=ChunkReader(chunked(packed, 5))) as file:
        assert b"".join(iter_file(file, chunk_size=3)) == TEXT
    assert b"".join(iter_file(io.BytesIO(b""))) == b""
