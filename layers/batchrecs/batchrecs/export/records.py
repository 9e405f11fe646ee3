"""Per-user records, encoded straight into DynamoDB's JSON wire format.

No TypeSerializer, and no Python dict per attribute value either: a record is the bytes of its
``Item`` (``{"pk": {"S": ...}, ...}``), built from orjson-escaped strings, so the writer only joins
bytes into a request body. The attributes every record of an export shares are encoded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from batchrecs.clock import iso
from batchrecs.formats.output_lines import OutLine


@dataclass(frozen=True, slots=True)
class RecordContext:
    """What every record of one export shares."""

    route: str
    job_name: str
    generated_at: str
    expires_at: int

    @classmethod
    def for_job(cls, route: str, job_name: str, generated: datetime, ttl_days: int) -> RecordContext:
        expires = generated + timedelta(days=ttl_days)
        return cls(route, job_name, iso(generated), int(expires.timestamp()))

    @property
    def shared(self) -> bytes:
        """The encoded attributes every record of this export ends with."""
        return orjson.dumps(
            {
                "sk": {"S": self.route},
                "route": {"S": self.route},
                "jobName": {"S": self.job_name},
                "generatedAt": {"S": self.generated_at},
                "expiresAt": {"N": str(self.expires_at)},
            }
        )[1:-1]


def record_key(line: OutLine, ctx: RecordContext) -> tuple[str, str]:
    return line.key, ctx.route


def record_item(line: OutLine, shared: bytes) -> bytes:
    """``pk`` = user (or item) id, ``sk`` = route; items in rank order, scores only when present.

    ``shared`` is ``RecordContext.shared`` (computed once per export).
    """
    scores = b',"scores":' + number_list(line.scores) if line.scores is not None else b""
    return (
        b'{"pk":{"S":'
        + orjson.dumps(line.key)
        + b'},"items":'
        + string_list(line.items)
        + scores
        + b","
        + shared
        + b"}"
    )


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
