"""Batch input files: decode what users upload, validate each line for a job kind, normalise.

Accepted uploads: JSON Lines (Personalize's format), a top-level JSON array, or CSV with a header row
naming the fields; any of these gzip-compressed; with or without a UTF-8 BOM, CRLF line endings and
blank lines. Everything is streamed: memory holds one line (or one array element) at a time.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson

from batchrecs.formats.lines import ChunkReader, iter_file, iter_lines
from batchrecs.routes.config import JobKind

MAX_ID_LENGTH = 256
MAX_ITEM_LIST = 500
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = codecs.BOM_UTF8
_WHITESPACE = b" \t\r\n"
_ARRAY_ELEMENT_LIMIT = 16 << 20
_CSV_HEADER = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_.]*(\s*,\s*[A-Za-z_][A-Za-z0-9_.]*)*\s*$")
_FILTER_COLUMN = re.compile(r"^filterValues\.([A-Za-z0-9_]+)$")
_ATTRIBUTE_TERM = r'ITEMS\.[A-Za-z_][A-Za-z0-9_]*\s*=\s*"(?:[^"\\]|\\.)*"'
_ATTRIBUTE_EXPRESSION = re.compile(rf"^\s*{_ATTRIBUTE_TERM}(?:\s+AND\s+{_ATTRIBUTE_TERM})*\s*$")

FIELDS: dict[JobKind, tuple[str, ...]] = {
    JobKind.USER_PERSONALIZATION: ("userId",),
    JobKind.POPULARITY: ("userId",),
    JobKind.RELATED_ITEMS: ("itemId",),
    JobKind.PERSONALIZED_RANKING: ("userId", "itemList"),
    JobKind.ITEM_AFFINITY: ("itemId",),
    JobKind.ITEM_ATTRIBUTE_AFFINITY: ("itemAttributes",),
}
OPTIONAL_FIELDS = ("filterValues",)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the input, at a 1-based line number (0 for the file as a whole)."""

    line: int
    expected: str
    found: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "expected": self.expected, "found": self.found}


@dataclass(frozen=True, slots=True)
class ValidLine:
    """A line that passed validation, as the canonical JSON Lines bytes Personalize will read."""

    line: int
    key: str
    canonical: bytes


class InputFormatError(Exception):
    """The file cannot be read any further (not gzip, broken JSON array, bad CSV header...)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(f"line {problem.line}: expected {problem.expected}, found {problem.found}")
        self.problem = problem


# --------------------------------------------------------------------------- decoding the upload


def read_entries(chunks: Iterable[bytes], name: str, kind: JobKind) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for every line or array element of an upload.

    ``value`` is the decoded JSON value, a ``Problem`` for a line that could not be decoded, or
    ``None`` for a blank line. Raises ``InputFormatError`` when the file cannot be read further.
    """
    stream = _decompressed(iter(chunks))
    stream = _without_bom(stream)
    first_byte, head, stream = _peek_content(stream)
    if first_byte is None:
        return
    plain_name = name[:-3] if name.lower().endswith(".gz") else name
    if first_byte == b"[":
        yield from _array_entries(stream)
    elif plain_name.lower().endswith(".csv") or (first_byte != b"{" and _CSV_HEADER.match(head)):
        yield from _csv_entries(iter_lines(stream), kind)
    else:
        yield from _jsonl_entries(iter_lines(stream))


def _decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= 2:
            break
    rest = chain([head], chunks)
    if not head.startswith(_GZIP_MAGIC):
        return rest
    return _gunzip(rest)


def _gunzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        with gzip.GzipFile(fileobj=ChunkReader(chunks)) as file:
            yield from iter_file(file)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputFormatError(Problem(0, "a complete gzip stream", f"corrupt gzip data ({exc})")) from exc


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(_BOM):
            break
    yield head.removeprefix(_BOM)
    yield from chunks


def _peek_content(chunks: Iterator[bytes]) -> tuple[bytes | None, str, Iterator[bytes]]:
    """Find the first non-blank byte and the first non-blank line (up to 64 KiB) of the stream."""
    buffered: list[bytes] = []
    first: bytes | None = None
    for chunk in chunks:
        buffered.append(chunk)
        text = b"".join(buffered).lstrip(_WHITESPACE)
        if text and first is None:
            first = text[:1]
        if first is not None and (b"\n" in text or len(text) > 65536):
            break
    data = b"".join(buffered)
    head = data.lstrip(_WHITESPACE).split(b"\n", 1)[0][:65536].decode("utf-8", "replace")
    return first, head, chain([data], chunks)


def _jsonl_entries(lines: Iterator[bytes]) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip(_WHITESPACE):
            yield number, None
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, Problem(number, "a JSON object on one line", f"invalid JSON ({_reason(exc)})")


def _reason(exc: ValueError) -> str:
    return str(exc).split(":", 1)[0] if isinstance(exc, orjson.JSONDecodeError) else str(exc)


def _array_entries(chunks: Iterator[bytes]) -> Iterator[tuple[int, Any]]:
    """Stream the elements of one top-level JSON array, each with the line it starts on."""
    reader = _ArrayReader(chunks)
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


class _ArrayReader:
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._json = json.JSONDecoder()
        self._buffer = ""
        self._pos = 0
        self._eof = False
        self.line = 1

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
            while self._pos < len(self._buffer) and self._buffer[self._pos] in " \t\r\n":
                if self._buffer[self._pos] == "\n":
                    self.line += 1
                self._pos += 1
            if self._pos < len(self._buffer):
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
        while True:
            try:
                value, end = self._json.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError as exc:
                if len(self._buffer) - self._pos < _ARRAY_ELEMENT_LIMIT and self._more():
                    continue
                raise InputFormatError(
                    Problem(self.line, "a JSON value as array element", f"invalid JSON ({exc.msg})")
                ) from exc
            if end == len(self._buffer) and not self._eof and self._more():
                continue  # a number at the end of the buffer may go on in the next chunk
            self.line += self._buffer.count("\n", self._pos, end)
            self._pos = end
            return value


def _csv_entries(lines: Iterator[bytes], kind: JobKind) -> Iterator[tuple[int, Any]]:
    columns: list[str] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip(_WHITESPACE):
            yield number, None
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, Problem(number, "UTF-8 text", f"invalid byte at column {exc.start + 1}")
            continue
        cells = next(csv.reader([text]))
        if not columns:
            columns = _csv_header(cells, number, kind)
            continue
        if len(cells) != len(columns):
            yield number, Problem(number, f"{len(columns)} comma-separated values", f"{len(cells)} values")
            continue
        yield number, _csv_record(columns, cells)


def _csv_header(cells: list[str], number: int, kind: JobKind) -> list[str]:
    columns = [cell.strip() for cell in cells]
    required = FIELDS[kind]
    expected = f"a CSV header naming {', '.join(required)} (and optionally filterValues.<NAME> columns)"
    for column in columns:
        if column not in required and not _FILTER_COLUMN.match(column):
            raise InputFormatError(Problem(number, expected, f"unknown column {column!r}"))
    missing = [field for field in required if field not in columns]
    if missing:
        raise InputFormatError(Problem(number, expected, f"no column {missing[0]!r}"))
    if len(set(columns)) != len(columns):
        raise InputFormatError(Problem(number, expected, "a repeated column"))
    return columns


def _csv_record(columns: list[str], cells: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
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


# --------------------------------------------------------------------------- validating a line


def validate_value(number: int, value: Any, kind: JobKind) -> ValidLine | list[Problem]:
    """Check one decoded line against the input rules of ``kind``; return it canonical or its problems."""
    if not isinstance(value, dict):
        return [Problem(number, "a JSON object", _describe(value))]
    allowed = FIELDS[kind] + OPTIONAL_FIELDS
    problems = [
        Problem(number, f"only the fields {', '.join(allowed)}", f"unknown field {_clip(field)!r}")
        for field in value
        if field not in allowed
    ]
    canonical: dict[str, Any] = {}
    for field in FIELDS[kind]:
        checked = _check_field(field, value.get(field), field in value)
        if isinstance(checked, tuple):
            problems.append(Problem(number, *checked))
        else:
            canonical[field] = checked
    if "filterValues" in value:
        filter_problem = _check_filter_values(value["filterValues"])
        if filter_problem:
            problems.append(Problem(number, *filter_problem))
        else:
            canonical["filterValues"] = value["filterValues"]
    if problems:
        return problems
    key = canonical[kind.key_field]
    if kind is JobKind.ITEM_ATTRIBUTE_AFFINITY:
        key = " ".join(key.split())
    return ValidLine(number, key, orjson.dumps(canonical))


def _check_field(field: str, value: Any, present: bool) -> Any:
    """The field's value when valid, else ``(expected, found)``."""
    if field == "itemList":
        return _check_item_list(value, present)
    expected = f"{field}: a non-empty string of at most {MAX_ID_LENGTH} characters"
    if field == "itemAttributes":
        expected = 'itemAttributes: ITEMS.<field> = "<value>" terms joined by AND'
    if not present:
        return expected, "no such field"
    problem = _id_problem(value)
    if problem:
        return expected, problem
    if field == "itemAttributes" and not _ATTRIBUTE_EXPRESSION.match(value):
        return expected, _describe(value)
    return value


def _id_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return _describe(value)
    if not value.strip():
        return "an empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"a string of {len(value)} characters"
    return None


def _check_item_list(value: Any, present: bool) -> Any:
    expected = f"itemList: a list of 1 to {MAX_ITEM_LIST} non-empty item ids"
    if not present:
        return expected, "no such field"
    if not isinstance(value, list):
        return expected, _describe(value)
    if not value:
        return expected, "an empty list"
    if len(value) > MAX_ITEM_LIST:
        return expected, f"a list of {len(value)} items"
    for position, item in enumerate(value, 1):
        problem = _id_problem(item)
        if problem:
            return expected, f"item {position} is {problem}"
    return value


def _check_filter_values(value: Any) -> tuple[str, str] | None:
    expected = "filterValues: an object mapping placeholder names to strings"
    if not isinstance(value, dict):
        return expected, _describe(value)
    for name, item in value.items():
        if not isinstance(item, str):
            return expected, f"{_clip(name)!r} is {_describe(item)}"
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {_clip(value)!r}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return f"a list of {len(value)} values"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
