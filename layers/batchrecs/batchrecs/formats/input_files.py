"""Reading an uploaded batch input file: what it is, and its lines (or array elements) one at a time.

Accepted uploads: JSON Lines (Personalize's format), a top-level JSON array, or CSV with a header row
naming the fields; any of these gzip-compressed; with or without a UTF-8 BOM, CRLF line endings and
blank lines. Everything is streamed and bounded (``ReadLimits``): memory holds one line (or one array
element) of at most ``line_bytes`` at a time, and reading stops after ``content_bytes`` decompressed bytes
or ``lines`` lines. Files of another kind (UTF-16, bzip2, zip, gzip inside gzip...) are named, not
reported line by line as invalid JSON.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson

from batchrecs.formats.input_lines import (
    FIELDS,
    Blank,
    HugeNumber,
    IdBlock,
    InputFormatError,
    Problem,
    RepeatedField,
)
from batchrecs.formats.lines import ChunkReader, LongLine, iter_bounded_lines, iter_file
from batchrecs.routes.config import JOB_INPUT_BYTES, JOB_INPUT_RECORDS, JobKind

MAX_INPUT_BYTES = JOB_INPUT_BYTES  # Personalize reads at most 1 GB of input per batch job
MAX_RECORDS = JOB_INPUT_RECORDS  # ... and at most 50M records per file
MAX_UPLOAD_PARTS = 4  # an upload past one job's limits runs as several jobs: up to 4 GB, 200M lines
MAX_UPLOAD_BYTES = MAX_UPLOAD_PARTS * MAX_INPUT_BYTES
MAX_UPLOAD_RECORDS = MAX_UPLOAD_PARTS * MAX_RECORDS
MAX_LINE_BYTES = 1 << 20  # a valid line is far smaller: 500 item ids of 256 characters is ~130 KB
_HEAD_BYTES = 65536
_WHITESPACE = b" \t\r\n"
_BLANK = Blank(1)
_CSV_HEADER = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_.]*(\s*,\s*[A-Za-z_][A-Za-z0-9_.]*)*\s*$")
_FILTER_COLUMN = re.compile(r"^filterValues\.([A-Za-z0-9_]+)$")
_EXPECTED_FILE = "UTF-8 text: JSON Lines, a JSON array or CSV (optionally gzip-compressed)"
_FOREIGN = (  # magic numbers and byte-order marks of files that are not (gzip of) UTF-8 text
    (b"\x00\x00\xfe\xff", "UTF-32 text (big-endian byte-order mark)"),
    (b"\xff\xfe\x00\x00", "UTF-32 text (little-endian byte-order mark)"),
    (b"\xfe\xff", "UTF-16 text (big-endian byte-order mark)"),
    (b"\xff\xfe", "UTF-16 text (little-endian byte-order mark)"),
    (b"BZh", "bzip2-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
)
_GZIP = b"\x1f\x8b"
_MAGIC_BYTES = 6


@dataclass(frozen=True, slots=True)
class ReadLimits:
    content_bytes: int = MAX_UPLOAD_BYTES  # decompressed bytes read
    lines: int = MAX_UPLOAD_RECORDS  # lines (or array elements) read, blank ones included
    line_bytes: int = MAX_LINE_BYTES  # one line, or one array element


SERVICE_LIMITS = ReadLimits()


class SourceError(Exception):
    """Reading the upload itself failed (S3, network): not a problem of the file, so not a rejection."""


def read_entries(
    chunks: Iterable[bytes],
    name: str,
    kind: JobKind,
    limits: ReadLimits = SERVICE_LIMITS,
    columns: Mapping[str, str] | None = None,
    blocks: bool = False,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for every line or array element of an upload.

    ``value`` is the decoded JSON value, a ``Problem`` for a line that could not be decoded, or a
    ``Blank`` run of blank lines. Raises ``InputFormatError`` when the file cannot be read further, and
    ``SourceError`` (its cause the original error) when ``chunks`` fails. ``columns`` (a route's) names
    the CSV header of an input field, e.g. ``{"userId": "customer_ref"}``. ``blocks``: runs of JSON
    Lines that are each exactly ``{"<field>": "<plain id>"}`` may come as one ``IdBlock`` (numbered by its
    first line), for the kinds whose lines have one id field.
    """
    stream = _bounded(_decompressed(_source(chunks)), limits.content_bytes)
    stream = _without_utf8_bom(stream)
    blank, head, stream = _content_start(stream)
    if head is None:
        if blank:
            yield 1, Blank(blank)
        return
    if blank:
        yield 1, Blank(blank)
    first = blank + 1
    plain_name = name[:-3] if name.lower().endswith(".gz") else name
    if head.startswith(b"["):
        yield from _array_entries(stream, first, limits.line_bytes)
    elif plain_name.lower().endswith(".csv") or (
        not head.startswith(b"{") and _CSV_HEADER.match(head.decode("utf-8", "replace"))
    ):
        lines = iter_bounded_lines(stream, limits.line_bytes)
        yield from _csv_entries(lines, kind, first, limits.line_bytes, columns or {})
    elif blocks and kind in _ID_LINE:
        yield from _jsonl_blocks(stream, first, limits.line_bytes, kind)
    else:
        yield from _jsonl_entries(iter_bounded_lines(stream, limits.line_bytes), first, limits.line_bytes)


# --------------------------------------------------------------------------- the byte stream


def _source(chunks: Iterable[bytes]) -> Iterator[bytes]:
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise SourceError(str(exc)) from exc
        yield chunk


def _head(chunks: Iterator[bytes], size: int, stop: bytes | None = None) -> tuple[bytes, Iterator[bytes]]:
    """The stream's first chunks joined, once they hold ``size`` bytes (or a chunk holds ``stop``; all of
    it, if shorter), and the whole stream again, that joined chunk first."""
    parts: list[bytes] = []
    held = 0
    for chunk in chunks:
        parts.append(chunk)
        held += len(chunk)
        if held >= size or (stop is not None and stop in chunk):
            break
    head = b"".join(parts)
    return head, chain([head], chunks)


def _foreign(head: bytes) -> str | None:
    """What the file is, when its first bytes say it is not UTF-8 text."""
    for magic, what in _FOREIGN:
        if head.startswith(magic):
            return what
    if b"\x00" in head[:4]:
        return "UTF-16 or UTF-32 text (NUL bytes, no byte-order mark)"
    return None


def _decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head, chunks = _head(chunks, _MAGIC_BYTES)
    if not head.startswith(_GZIP):
        _refuse_foreign(head, "")
        yield from chunks
        return
    inner, stream = _head(_gunzip(chunks), _MAGIC_BYTES)
    if inner.startswith(_GZIP):
        raise InputFormatError(Problem(0, _EXPECTED_FILE, "gzip inside gzip: compress the file once"))
    _refuse_foreign(inner, " inside gzip")
    yield from stream


def _refuse_foreign(head: bytes, where: str) -> None:
    what = _foreign(head)
    if what is not None:
        raise InputFormatError(Problem(0, _EXPECTED_FILE, f"{what}{where}"))


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=ChunkReader(chunks)) as file:
            yield from iter_file(file)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFormatError(Problem(0, "a complete gzip stream", f"corrupt gzip data ({exc})")) from exc


def _bounded(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    read = 0
    for chunk in chunks:
        read += len(chunk)
        if read > limit:
            raise InputFormatError(
                Problem(0, f"at most {limit:,} bytes of content (after decompression)", "more")
            )
        yield chunk


def _without_utf8_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head, chunks = _head(chunks, len(codecs.BOM_UTF8))  # its first chunk holds a whole BOM, if any
    next(chunks, b"")
    yield head.removeprefix(codecs.BOM_UTF8)
    yield from chunks


def _content_start(chunks: Iterator[bytes]) -> tuple[int, bytes | None, Iterator[bytes]]:
    """Drop the white space before the first content as it streams (counting its newlines); return that
    count, the first line of content (up to 64 KiB; None for a blank file) and the stream from it."""
    blank = 0
    for chunk in chunks:
        content = chunk.lstrip(_WHITESPACE)
        blank += chunk.count(b"\n", 0, len(chunk) - len(content))
        if content:
            data, stream = _head(chain([content], chunks), _HEAD_BYTES, stop=b"\n")
            head = data.split(b"\n", 1)[0][:_HEAD_BYTES]
            if b"\r" in head.rstrip(b"\r"):
                raise InputFormatError(
                    Problem(
                        blank + 1, "lines ending in LF or CRLF", "lines ending in CR only (classic Mac OS)"
                    )
                )
            return blank, head, stream
    return blank, None, iter(())


def _too_long(number: int, length: int, limit: int) -> Problem:
    return Problem(number, f"a line of at most {limit:,} bytes", f"a line of {length:,} bytes")


# --------------------------------------------------------------------------- JSON Lines

_KEY_SEPARATOR = b":"


def _jsonl_entries(lines: Iterator[bytes | LongLine], first: int, limit: int) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines, first):
        if line.__class__ is LongLine:
            yield number, _too_long(number, line.length, limit)
            continue
        try:
            value = orjson.loads(line)  # type: ignore[arg-type]
        except orjson.JSONDecodeError as exc:
            if not line.strip(_WHITESPACE):  # type: ignore[union-attr]
                yield number, _BLANK
                continue
            reason = str(exc).split(":", 1)[0]
            yield number, Problem(number, "a JSON object on one line", f"invalid JSON ({reason})")
            continue
        if value.__class__ is dict:
            colons = line.count(_KEY_SEPARATOR)  # type: ignore[union-attr]
            if colons > len(value) and colons > _fields(value):  # a field may repeat: read it exactly
                value = json.loads(line, object_pairs_hook=_object)  # type: ignore[arg-type]
        yield number, value


# A line that is exactly {"<field>": "<id>"} with an id of printable ASCII (no quote, backslash or spaces
# around it), 1-256 characters: valid as it is (what ``validate_value``'s fast path accepts, and less).
_PLAIN_ID = rb"([!#-\[\]-~](?:[ !#-\[\]-~]{0,254}[!#-\[\]-~])?)"
_ID_LINE = {
    kind: re.compile(
        rb'^[ \t]*\{[ \t]*"' + field.encode() + rb'"[ \t]*:[ \t]*"' + _PLAIN_ID + rb'"[ \t]*\}[ \t]*\r?$',
        re.MULTILINE,
    )
    for kind, field in ((kind, kind.input_fields[0]) for kind in JobKind)
    if kind.input_fields == (kind.key_field,) and kind.key_field in ("userId", "itemId")
}


def _jsonl_blocks(
    chunks: Iterator[bytes], first: int, limit: int, kind: JobKind
) -> Iterator[tuple[int, Any]]:
    """JSON Lines a chunk at a time: the chunk's whole lines are one ``IdBlock`` when every one is a plain
    id line (one regex pass, no line-by-line work), else they are read line by line as usual. A line
    longer than ``limit`` sends the rest of the file to the line-by-line reader, which bounds it."""
    pattern, field = _ID_LINE[kind], kind.input_fields[0]
    number, rest = first, b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        end = data.rfind(b"\n") + 1
        whole, rest = data[:end], data[end:]
        if whole:
            count = whole.count(b"\n")
            ids = pattern.findall(whole)
            if len(ids) == count:
                yield number, IdBlock(field, ids)
            else:
                yield from _jsonl_entries(iter_bounded_lines([whole], limit), number, limit)
            number += count
        if len(rest) > limit:
            yield from _jsonl_entries(iter_bounded_lines(chain([rest], chunks), limit), number, limit)
            return
    if rest:
        yield from _jsonl_entries(iter_bounded_lines([rest], limit), number, limit)


def _fields(value: Any) -> int:
    """How many object fields ``value`` holds at any depth: a line with more ``:`` may repeat one."""
    if isinstance(value, dict):
        return len(value) + sum(_fields(item) for item in value.values())
    if isinstance(value, list):
        return sum(_fields(item) for item in value)
    return 0


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any] | RepeatedField:
    value = dict(pairs)
    if len(value) == len(pairs):
        return value
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            return RepeatedField(name)
        seen.add(name)
    raise AssertionError("unreachable: fewer fields than pairs means a name repeats")


def _number(text: str) -> int | HugeNumber:
    return HugeNumber(len(text)) if len(text) > 100 else int(text)


# --------------------------------------------------------------------------- a JSON array


def _array_entries(chunks: Iterator[bytes], first: int, limit: int) -> Iterator[tuple[int, Any]]:
    """Stream the elements of one top-level JSON array, each with the line it starts on."""
    reader = _ArrayReader(chunks, first, limit)
    reader.expect("[", "a JSON array")
    element_count = 0
    while True:
        if not reader.skip_space():
            raise InputFormatError(Problem(reader.line, "']' closing the JSON array", "end of file"))
        if reader.peek() == "]":
            reader.advance()
            if reader.skip_space():
                raise InputFormatError(
                    Problem(reader.line, "end of file after the JSON array", "more content")
                )
            return
        if element_count:
            reader.expect(",", "',' between array elements")
            if not reader.skip_space():
                raise InputFormatError(Problem(reader.line, "an array element", "end of file"))
        line = reader.line
        yield line, reader.decode_value()
        element_count += 1


_NOT_SPACE = re.compile(r"[^ \t\r\n]")


class _ArrayReader:
    def __init__(self, chunks: Iterator[bytes], first: int, limit: int) -> None:
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._json = json.JSONDecoder(object_pairs_hook=_object, parse_int=_number)
        self._limit = limit
        self._buffer = ""
        self._pos = 0
        self._eof = False
        self.line = first

    def _more(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = next(self._chunks)
            text = self._decoder.decode(chunk)
        except StopIteration:
            self._eof = True
            text = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InputFormatError(Problem(self.line, "UTF-8 text", f"invalid byte ({exc.reason})")) from exc
        self._buffer = self._buffer[self._pos :] + text
        self._pos = 0
        return True

    def skip_space(self) -> bool:
        """Skip white space; False at the end of the file."""
        while True:
            found = _NOT_SPACE.search(self._buffer, self._pos)
            end = found.start() if found else len(self._buffer)
            self.line += self._buffer.count("\n", self._pos, end)
            self._pos = end
            if found:
                return True
            if not self._more():
                return False

    def peek(self) -> str:
        return self._buffer[self._pos]

    def advance(self) -> None:
        self._pos += 1

    def expect(self, char: str, expected: str) -> None:
        if not self.skip_space():
            raise InputFormatError(Problem(self.line, expected, "end of file"))
        if self.peek() != char:
            raise InputFormatError(
                Problem(self.line, expected, f"{self._buffer[self._pos : self._pos + 20]!r}")
            )
        self.advance()

    def decode_value(self) -> Any:
        expected = "a JSON value as array element"
        while True:
            try:
                value, end = self._json.raw_decode(self._buffer, self._pos)
            except RecursionError as exc:
                raise InputFormatError(
                    Problem(self.line, expected, "arrays or objects nested too deeply")
                ) from exc
            except json.JSONDecodeError as exc:
                if len(self._buffer) - self._pos <= self._limit and self._more():
                    continue
                if len(self._buffer) - self._pos > self._limit:
                    found = f"an element longer than {self._limit:,} bytes"
                    raise InputFormatError(
                        Problem(self.line, f"array elements of at most {self._limit:,} bytes", found)
                    ) from exc
                raise InputFormatError(Problem(self.line, expected, f"invalid JSON ({exc.msg})")) from exc
            if end == len(self._buffer) and not self._eof and self._more():
                continue  # a number at the end of the buffer may go on in the next chunk
            self.line += self._buffer.count("\n", self._pos, end)
            self._pos = end
            return value


# --------------------------------------------------------------------------- CSV


def _csv_entries(
    lines: Iterator[bytes | LongLine], kind: JobKind, first: int, limit: int, renames: Mapping[str, str]
) -> Iterator[tuple[int, Any]]:
    """Rows of a CSV file with a header, read by a strict CSV reader: a quoted cell may hold newlines
    and commas; a broken quote is a problem of the row it starts on."""
    physical = first - 1  # the line number of the last line the reader took

    def texts() -> Iterator[str]:
        nonlocal physical
        for line in lines:
            physical += 1
            if isinstance(line, LongLine):
                raise InputFormatError(_too_long(physical, line.length, limit))
            yield line.decode("utf-8", "surrogateescape") + "\n"

    reader = csv.reader(texts(), strict=True)
    columns: list[str] = []
    while True:
        start = physical + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, Problem(start, "a CSV row (quotes closed, each field within limits)", str(exc))
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            yield start, _BLANK
            continue
        if any(_undecodable(cell) for cell in cells):
            yield start, Problem(start, "UTF-8 text", "an invalid byte")
            continue
        if not columns:
            columns = _csv_header(cells, start, kind, renames)
            continue
        if len(cells) != len(columns):
            yield start, Problem(start, f"{len(columns)} comma-separated values", f"{len(cells)} values")
            continue
        yield start, _csv_record(columns, cells)


def _undecodable(cell: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in cell) if not cell.isascii() else False


def _csv_header(cells: list[str], number: int, kind: JobKind, renames: Mapping[str, str]) -> list[str]:
    """The header's columns as field names: the route's ``columns`` first (``{userId: customer_ref}``:
    a ``customer_ref`` column, in any case, is ``userId``), then ``USER_ID``, ``user_id``, ``UserId``...
    are ``userId`` (any case, with or without underscores; likewise the other fields). A user route's file
    that is an interactions file (USER_ID and ITEM_ID columns, as Personalize's interactions dataset has
    them) keeps its user ids only: the other columns are left out (``""``) and a repeated user is a
    duplicate."""
    required = FIELDS[kind]
    aliases = {field.lower(): field for field in required}
    renamed = {header.lower(): field for field, header in renames.items()}
    columns = [
        renamed.get(cell.strip().lower()) or aliases.get(cell.strip().replace("_", "").lower(), cell.strip())
        for cell in cells
    ]
    interactions = (
        required == ("userId",)
        and "userId" in columns
        and any(cell.strip().replace("_", "").lower() == "itemid" for cell in cells)
    )
    if interactions:
        columns = [column if column == "userId" else "" for column in columns]
    headers = [renames.get(field, field) for field in required]
    expected = f"a CSV header naming {', '.join(headers)} (and optionally filterValues.<NAME> columns)"
    for column in columns:
        if column and column not in required and not _FILTER_COLUMN.match(column):
            raise InputFormatError(Problem(number, expected, f"unknown column {column!r}"))
    missing = [field for field in required if field not in columns]
    if missing:
        header = renames.get(missing[0], missing[0])
        raise InputFormatError(Problem(number, expected, f"no column {header!r}"))
    named = [column for column in columns if column]
    if len(set(named)) != len(named):
        raise InputFormatError(Problem(number, expected, "a repeated column"))
    return columns


def _csv_record(columns: list[str], cells: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
        if not column:  # an interactions file's other columns
            continue
        if column == "itemList":
            record[column] = _csv_item_list(cell)
        elif match := _FILTER_COLUMN.match(column):
            if cell:
                record.setdefault("filterValues", {})[match.group(1)] = cell
        else:
            record[column] = cell
    return record


def _csv_item_list(cell: str) -> Any:
    """``itemList`` in CSV: a JSON array, or ids separated by ``|``."""
    stripped = cell.strip()
    if stripped.startswith("["):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return cell
    return [part.strip() for part in stripped.split("|")] if stripped else []
