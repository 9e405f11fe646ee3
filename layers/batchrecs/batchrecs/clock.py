"""Time as the pipeline writes it: ISO-8601 UTC with a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    return iso(datetime.now(UTC))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
