"""Personalize batch output (``<input name>.out``): one JSON object per input line.

    {"input": {"userId": "4638"}, "output": {"recommendedItems": [...], "scores": [...]}, "error": null}

Lines that cannot become a record (an ``error`` set by Personalize, invalid JSON such as the examples
of the older guide, missing fields) are returned as a reason instead, never raised.

Scores keep the text they have in the file ("1.2E-5" stays "1.2E-5", "0.10" stays "0.10"): DynamoDB
numbers are decimal text, and a float round trip would change what Personalize wrote.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from batchrecs.routes.config import JobKind


@dataclass(frozen=True, slots=True)
class OutLine:
    """One usable output line: the id it answers, the ids it recommends, and their scores if any.

    ``scores`` are the numbers' original JSON text. A theme job's line (Content Generator) also has its
    ``theme`` and each item's relevance to it (``theme_scores``, original text, same order as ``items``).
    """

    key: str
    items: list[str]
    scores: list[str] | None
    theme: str | None = None
    theme_scores: list[str] | None = None

    def above(self, minimum: float) -> tuple[OutLine, int]:
        """The line without the items whose theme relevance is below ``minimum``; how many were left out."""
        if self.theme_scores is None:
            return self, 0
        keep = [i for i, text in enumerate(self.theme_scores) if float(text) >= minimum]
        if len(keep) == len(self.items):
            return self, 0
        scores = [self.scores[i] for i in keep] if self.scores is not None else None
        kept = OutLine(
            self.key, [self.items[i] for i in keep], scores, self.theme, [self.theme_scores[i] for i in keep]
        )
        return kept, len(self.items) - len(keep)


def parse_out_line(line: bytes, kind: JobKind) -> OutLine | str:
    """Parse one .out line for ``kind``; return an ``OutLine`` or the reason it is unusable."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    error = value.get("error")
    if error is not None:
        return f"Personalize error: {str(error)[:500]}"
    key = _key(value, kind)
    if key is None:
        return f"no {kind.key_field} in input"
    output = value.get("output")
    if not isinstance(output, dict):
        return "no output object"
    items = _ids(output, kind)
    if items is None:
        return f"output.{_items_field(kind)} is not a list of strings"
    texts = _numbers(line, output, "scores", _SCORES, len(items))
    if isinstance(texts, str):
        return texts
    theme = output.get("theme")
    if theme is None:
        return OutLine(key, items, texts)
    if not isinstance(theme, str):
        return "output.theme is not a string"
    relevance = _numbers(line, output, "itemsThemeRelevanceScores", _THEME_SCORES, len(items))
    if isinstance(relevance, str):
        return relevance
    if relevance is None:
        return "output.itemsThemeRelevanceScores is missing for a theme"
    return OutLine(key, items, texts, theme, relevance)


def _numbers(
    line: bytes, output: dict, field: str, pattern: re.Pattern[bytes], count: int
) -> list[str] | str | None:
    """``output[field]``: None if absent, else the numbers' texts, or the reason they are unusable."""
    values = output.get(field)
    if values is None:
        return None
    if not isinstance(values, list):
        return f"output.{field} is not a list of numbers"
    if len(values) != count:
        if not all(_is_number(value) for value in values):
            return f"output.{field} is not a list of numbers"
        return f"output.{field} has {len(values)} values for {count} items"
    texts = _score_texts(line, values, pattern)
    if texts is None:
        if not all(_is_number(value) for value in values):
            return f"output.{field} is not a list of numbers"
        texts = [repr(value) for value in values]
    return texts


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_ONLY_STRINGS = {str}  # orjson makes exact str objects, never subclasses
_SCORES = re.compile(rb'"scores"\s*:\s*\[([^\]]*)\]')
_THEME_SCORES = re.compile(rb'"itemsThemeRelevanceScores"\s*:\s*\[([^\]]*)\]')
_NUMBER_BYTES = b"0123456789eE+-., \t\r\n"


def _score_texts(line: bytes, scores: list[object], pattern: re.Pattern[bytes] = _SCORES) -> list[str] | None:
    """The scores as written in ``line``, or None when that text cannot be trusted.

    The last ``"scores": [...]`` in the line is the output's (output follows input). It is used only
    if it holds nothing but number characters and parses to exactly the parsed values (so it is a
    list of numbers, and text from a string or another field can never leak in); one C-level parse
    and compare instead of a Python loop over the scores.
    """
    if not scores:
        return []
    raw = None
    for match in pattern.finditer(line):
        raw = match.group(1)
    if raw is None or raw.translate(None, _NUMBER_BYTES):
        return None
    try:
        if orjson.loads(b"[" + raw + b"]") != scores:
            return None
    except orjson.JSONDecodeError:
        return None
    # C-level: drop the whitespace between numbers (none can be inside one: the parse above
    # succeeded), then split; Personalize writes compact JSON, so usually there is none
    return "".join(raw.decode("ascii").split()).split(",")


def _key(value: dict, kind: JobKind) -> str | None:
    source = value.get("input")
    if kind is JobKind.ITEM_ATTRIBUTE_AFFINITY and "itemAttributes" in value:
        source = value  # segment output puts the expression at top level
    if not isinstance(source, dict):
        return None
    key = source.get(kind.key_field)
    return key if isinstance(key, str) and key else None


def _items_field(kind: JobKind) -> str:
    return "usersList" if kind.is_segment else "recommendedItems"


def _ids(output: dict, kind: JobKind) -> list[str] | None:
    if kind.is_segment:
        # Real segment jobs write usersList; the documentation says recommendedUsers.
        ids = output.get("usersList", output.get("recommendedUsers"))
    else:
        ids = output.get("recommendedItems")
    if not isinstance(ids, list) or not set(map(type, ids)) <= _ONLY_STRINGS:  # C-level check of each id
        return None
    return ids


# ------------------------------------------------------------------------------ segment jobs
#
# A segment line holds one item (or attribute expression) and the users most likely to engage with
# it, up to millions of them, so its users are never parsed into one list: they are validated and
# then streamed one at a time from the line's bytes. The rest of the line (input, error) is parsed
# as JSON with the users array cut out.

_USERS_ARRAY = re.compile(rb'"(usersList|recommendedUsers)"\s*:\s*\[')
_USER = re.compile(rb'\s*("(?:[^"\\]|\\.)*")\s*(,|\])')
_EMPTY = re.compile(rb"\s*\]")


@dataclass(frozen=True, slots=True)
class SegmentLine:
    """One usable segment line: the segment (itemId or expression) and where its users are."""

    segment: str
    line: bytes
    start: int  # offset of the first user token in ``line``
    count: int

    def users(self) -> Iterator[str]:
        """The users in rank order, decoded one at a time."""
        position = self.start
        for _ in range(self.count):
            match = _USER.match(self.line, position)
            assert match is not None  # checked by parse_segment_line
            token = match.group(1)
            yield orjson.loads(token) if b"\\" in token else token[1:-1].decode("utf-8")
            position = match.end()


def parse_segment_line(line: bytes, kind: JobKind) -> SegmentLine | str:
    """Parse one segment .out line (``usersList`` or ``recommendedUsers``), or say why it is unusable."""
    found = None
    for candidate in _USERS_ARRAY.finditer(line):
        found = candidate  # the last one: output follows input
    if found is None:
        reason = parse_out_line(line, kind)  # the generic parser names what is wrong
        return reason if isinstance(reason, str) else f"output.{_items_field(kind)} not found"
    start = position = found.end()
    count = 0
    if (empty := _EMPTY.match(line, position)) is not None:
        position = empty.end()
    else:
        while True:
            match = _USER.match(line, position)
            if match is None:
                return f"output.{found.group(1).decode()} is not a list of strings"
            count += 1
            position = match.end()
            if match.group(2) == b"]":
                break
    try:
        value = orjson.loads(line[:start] + b"]" + line[position:])
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(value, dict):
        return "not a JSON object"
    if value.get("error") is not None:
        return f"Personalize error: {str(value['error'])[:500]}"
    key = _key(value, kind)
    if key is None:
        return f"no {kind.key_field} in input"
    return SegmentLine(key, line, start, count)
