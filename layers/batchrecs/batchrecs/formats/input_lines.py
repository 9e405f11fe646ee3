"""One line of batch input: check it against the input rules of a job kind and make it canonical
(the JSON Lines Personalize reads). Reading whole files is ``input_files``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from batchrecs.routes.config import JobKind

MAX_ID_LENGTH = 256
MAX_ITEM_LIST = 500
_ATTRIBUTE_TERM = r'ITEMS\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*")'
_ATTRIBUTE_EXPRESSION = re.compile(rf"^\s*{_ATTRIBUTE_TERM}(?:\s+AND\s+{_ATTRIBUTE_TERM})*\s*$")
_TERMS = re.compile(_ATTRIBUTE_TERM)
# Characters an id must not hold: controls (C0, DEL, C1), invisible format characters (zero-width,
# bidirectional overrides and isolates, word joiners, BOM) and lone surrogates (not encodable as UTF-8).
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")

FIELDS: dict[JobKind, tuple[str, ...]] = {kind: kind.input_fields for kind in JobKind}
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


@dataclass(frozen=True, slots=True)
class Blank:
    """``count`` blank lines (white space only): counted, never reported."""

    count: int


@dataclass(frozen=True, slots=True)
class IdBlock:
    """Consecutive lines that are each exactly ``{"<field>": "<plain id>"}`` (the common upload), read in
    one go: the ids, as bytes, are valid as they are and their canonical lines are built in one join."""

    field: str
    ids: list[bytes]

    def lines(self) -> bytes:
        """The canonical lines, as ``validate_value`` makes them (``orjson.dumps``), each with its newline."""
        prefix = b'{"' + self.field.encode() + b'":"'
        return prefix + (b'"}\n' + prefix).join(self.ids) + b'"}\n'


@dataclass(frozen=True, slots=True)
class HugeNumber:
    """An integer too long to read (Python reads at most 4,300 digits): only its length is kept."""

    digits: int


@dataclass(frozen=True, slots=True)
class RepeatedField:
    """A JSON object that names a field twice (a reader would silently keep one of the values)."""

    name: str


# --------------------------------------------------------------------------- validating a line


def validate_value(
    number: int, value: Any, kind: JobKind, filtered: bool = True
) -> ValidLine | list[Problem]:
    """Check one decoded line against the input rules of ``kind``; return it canonical or its problems.

    ``filtered``: the route names a filter; without one, a line's ``filterValues`` could only be dropped
    (Personalize applies them to the job's filter), so it is a problem of the line instead."""
    if value.__class__ is dict and len(value) == 1:  # the common line, e.g. {"userId": "42"}: fast
        identifier = value.get(_ONLY_FIELD.get(kind))
        if identifier.__class__ is str and _plain_id(identifier):
            return ValidLine(number, identifier, orjson.dumps(value))
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
    if "filterValues" in value and not filtered:
        problems.append(Problem(number, "no filterValues: the route has no filterArn", "filterValues"))
    elif "filterValues" in value:
        filter_problem = _check_filter_values(value["filterValues"])
        if filter_problem:
            problems.append(Problem(number, *filter_problem))
        else:
            canonical["filterValues"] = value["filterValues"]
    if problems:
        return problems
    key = canonical[kind.key_field]
    if kind is JobKind.ITEM_ATTRIBUTE_AFFINITY:  # the same query, however it is spaced between terms
        key = " AND ".join(f"ITEMS.{name} = {quoted}" for name, quoted in _TERMS.findall(key))
    return ValidLine(number, key, orjson.dumps(canonical))


_ONLY_FIELD: dict[JobKind, str] = {
    kind: fields[0]
    for kind, fields in FIELDS.items()
    if kind is not JobKind.ITEM_ATTRIBUTE_AFFINITY and len(fields) == 1
}


def _plain_id(identifier: str) -> bool:
    """Whether an id is surely valid: printable (no control, format, surrogate or non-ASCII space
    characters), within the length, no spaces around it. Anything else gets the full check."""
    return (
        0 < len(identifier) <= MAX_ID_LENGTH
        and identifier.isprintable()
        and identifier[0] != " "
        and identifier[-1] != " "
    )


def _check_field(field: str, value: Any, present: bool) -> Any:
    """The field's value when valid, else ``(expected, found)``."""
    if field == "itemList":
        return _check_item_list(value, present)
    expected = f"{field}: a non-empty string of at most {MAX_ID_LENGTH} characters"
    if field == "itemAttributes":
        expected = 'itemAttributes: ITEMS.<field> = "<value>" terms joined by AND'
    if not present:
        return expected, "no such field"
    problem = _id_problem(value, spaced=field == "itemAttributes")
    if problem:
        return expected, problem
    if field == "itemAttributes" and not _ATTRIBUTE_EXPRESSION.match(value):
        return expected, _describe(value)
    return value


def _id_problem(value: Any, spaced: bool = False) -> str | None:
    """What is wrong with an id (or, ``spaced``, an expression that may have spaces around it)."""
    if not isinstance(value, str):
        return _describe(value)
    if not value.strip():
        return "an empty string"
    if len(value) > MAX_ID_LENGTH:
        return f"a string of {len(value)} characters"
    hidden = None if value.isprintable() else _HIDDEN.search(value)
    if hidden:
        return f"a string with the invisible or control character U+{ord(hidden.group()):04X}"
    if not spaced and value != value.strip():
        return f"a string with spaces around it ({_clip(value)!r})"
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
        if _SURROGATE.search(name + item):
            return expected, f"{_clip(name)!r} holds a lone surrogate (not Unicode text)"
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
    if isinstance(value, HugeNumber):
        return f"a number of {value.digits:,} digits"
    if isinstance(value, RepeatedField):
        return f"an object naming the field {_clip(value.name)!r} twice"
    return type(value).__name__


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
