"""Per-user records, built straight into DynamoDB's wire format (no TypeSerializer per item)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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


def record_key(line: OutLine, ctx: RecordContext) -> tuple[str, str]:
    return line.key, ctx.route


def record_item(line: OutLine, ctx: RecordContext) -> dict[str, Any]:
    """``pk`` = user (or item) id, ``sk`` = route; items in rank order, scores only when present."""
    item: dict[str, Any] = {
        "pk": {"S": line.key},
        "sk": {"S": ctx.route},
        "items": {"L": [{"S": value} for value in line.items]},
        "route": {"S": ctx.route},
        "jobName": {"S": ctx.job_name},
        "generatedAt": {"S": ctx.generated_at},
        "expiresAt": {"N": str(ctx.expires_at)},
    }
    if line.scores is not None:
        item["scores"] = {"L": [{"N": score} for score in line.scores]}
    return item
