"""Personalize batch output (``<input name>.out``): one JSON object per input line.

    {"input": {"userId": "4638"}, "output": {"recommendedItems": [...], "scores": [...]}, "error": null}

Lines that cannot become a record (an ``error`` set by Personalize, invalid JSON such as the examples
of the older guide, missing fields) are returned as a reason instead, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from batchrecs.routes.config import JobKind


@dataclass(frozen=True, slots=True)
class OutLine:
    """One usable output line: the id it answers, the ids it recommends, and their scores if any."""

    key: str
    items: list[str]
    scores: list[float] | None


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
    scores = output.get("scores")
    if scores is None:
        return OutLine(key, items, None)
    if not isinstance(scores, list) or not all(
        isinstance(score, int | float) and not isinstance(score, bool) for score in scores
    ):
        return "output.scores is not a list of numbers"
    if len(scores) != len(items):
        return f"output.scores has {len(scores)} values for {len(items)} items"
    return OutLine(key, items, scores)


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
    if not isinstance(ids, list) or not all(isinstance(item, str) for item in ids):
        return None
    return ids
