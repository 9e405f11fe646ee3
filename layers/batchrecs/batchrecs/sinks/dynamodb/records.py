"""Per-user records, encoded straight into DynamoDB's JSON wire format.

No TypeSerializer, and no Python dict per attribute value either: a record is the bytes of its
``Item`` (``{"pk": {"S": ...}, ...}``), built from orjson-escaped strings, so the writer only joins
bytes into a request body. The attributes every record of an export shares are encoded once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from batchrecs.clock import iso
from batchrecs.formats.output_lines import OutLine, SegmentLine


@dataclass(frozen=True, slots=True)
class RecordContext:
    """What every record of one export shares."""

    route: str
    job_name: str
    generated_at: str
    expires_at: int
    solution_version: str | None = None  # the model that made the records

    @classmethod
    def for_job(
        cls,
        route: str,
        job_name: str,
        generated: datetime,
        ttl_days: int,
        solution_version: str | None = None,
    ) -> RecordContext:
        expires = generated + timedelta(days=ttl_days)
        return cls(route, job_name, iso(generated), int(expires.timestamp()), solution_version)

    def encoded(self) -> Encoded:
        """The context encoded once per export."""
        model = {"solutionVersionArn": {"S": self.solution_version}} if self.solution_version else {}
        tail = orjson.dumps(
            {
                "route": {"S": self.route},
                "jobName": {"S": self.job_name},
                "generatedAt": {"S": self.generated_at},
                "expiresAt": {"N": str(self.expires_at)},
                **model,
            }
        )[1:-1]
        return Encoded(self.route, orjson.dumps(self.route), tail)


@dataclass(frozen=True, slots=True)
class Encoded:
    """``RecordContext`` as bytes: the route as a JSON string, and the attributes every record of
    the export ends with (route, jobName, generatedAt, expiresAt, solutionVersionArn)."""

    route: str
    route_json: bytes
    tail: bytes


def record_key(line: OutLine, ctx: RecordContext) -> tuple[str, str]:
    return line.key, ctx.route


def record_item(line: OutLine, shared: Encoded) -> bytes:
    """``pk`` = user (or item) id, ``sk`` = route; items in rank order, scores only when present, and a
    theme job's ``theme`` and ``themeScores`` (same order as ``items``)."""
    scores = b',"scores":' + number_list(line.scores) if line.scores is not None else b""
    if line.theme is not None:  # a theme job's line: the theme and each item's relevance to it
        scores += (
            b',"theme":{"S":'
            + orjson.dumps(line.theme)
            + b'},"themeScores":'
            + number_list(line.theme_scores or [])
        )
    return (
        b'{"pk":{"S":'
        + orjson.dumps(line.key)
        + b'},"sk":{"S":'
        + shared.route_json
        + b'},"items":'
        + string_list(line.items)
        + scores
        + b","
        + shared.tail
        + b"}"
    )


def segment_key(segment: str, kind_is_attribute: bool) -> str:
    """The sort-key part of a segment: the itemId, or a stable short hash of the expression."""
    if not kind_is_attribute:
        return segment
    return "attr-" + hashlib.sha256(segment.encode("utf-8")).hexdigest()[:16]


def segment_records(
    line: SegmentLine, shared: Encoded, by_attribute: bool
) -> Iterator[tuple[tuple[str, str], bytes]]:
    """One record per (user, segment): ``pk`` = userId, ``sk`` = ``<route>#<segment key>``, with
    ``segment`` (the itemId or expression) and ``rank`` (1-based), streamed user by user."""
    sk = f"{shared.route}#{segment_key(line.segment, by_attribute)}"
    middle = b'},"sk":{"S":' + orjson.dumps(sk) + b'},"segment":{"S":' + orjson.dumps(line.segment) + b"}"
    for rank, user in enumerate(line.users(), start=1):
        item = (
            b'{"pk":{"S":' + orjson.dumps(user) + middle + b',"rank":{"N":"%d"},' % rank + shared.tail + b"}"
        )
        yield (user, sk), item


def string_list(values: list[str]) -> bytes:
    """``{"L": [{"S": v}, ...]}`` encoded."""
    if not values:
        return b'{"L":[]}'
    dumped = orjson.dumps(values)
    if b"\\" in dumped:  # an escaped character: '","' might sit inside a value
        return orjson.dumps({"L": [{"S": value} for value in values]})
    # Without escapes a '"' only delimits values, so '","' only separates them.
    return b'{"L":[{"S":' + dumped[1:-1].replace(b'","', b'"},{"S":"') + b"}]}"


def number_list(texts: list[str]) -> bytes:
    """``{"L": [{"N": t}, ...]}`` encoded; ``texts`` are JSON number texts (no quotes, no escapes)."""
    if not texts:
        return b'{"L":[]}'
    return b'{"L":[{"N":"' + '"},{"N":"'.join(texts).encode("ascii") + b'"}]}'
