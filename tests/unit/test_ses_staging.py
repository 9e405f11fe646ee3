"""A chunk of an SES segment route: users staged per segment's topic, unmapped segments and users
without an address counted and reported, and the job moved on to IMPORTING once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
from batchrecs.export.worker import ChunkExporter
from batchrecs.formats.events import ChunkMessage
from batchrecs.jobs.model import EXPORTING, Job
from batchrecs.routes.config import parse_routes
from batchrecs.sinks.ses.destination import SesContacts

ARN = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
ROUTES = parse_routes(
    f"""
routes:
  new-arrivals:
    kind: item-affinity
    solutionVersionArn: {ARN}
    destination:
      type: ses
      contactList: list
      segmentTopics: {{"item-1": arrivals, "item-2": deals}}
      address: {{type: userId}}
""",
    {},
)
OUT = b"".join(
    orjson.dumps(line) + b"\n"
    for line in [
        {
            "input": {"itemId": "item-1"},
            "output": {"usersList": ["a@example.com", "b@example.com", "42"]},
            "error": None,
        },
        {"input": {"itemId": "item-9"}, "output": {"usersList": ["c@example.com"]}, "error": None},
        {"input": {"itemId": "item-2"}, "output": {"recommendedUsers": ["a@example.com"]}, "error": None},
    ]
)


class Writer:
    def __init__(self, store: dict[str, bytes], key: str) -> None:
        self.store, self.key, self.data, self.bytes_written = store, key, b"", 0

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.store[self.key] = self.data

    def abort(self) -> None:
        pass


class Objects:
    def __init__(self) -> None:
        self.store: dict[str, bytes] = {}

    def iter_range(self, bucket: str, key: str, start: int, if_match: str) -> Iterator[bytes]:
        yield OUT[start:]

    def writer(self, bucket: str, key: str, content_type: str) -> Writer:
        return Writer(self.store, key)


class Jobs:
    def __init__(self, job: Job) -> None:
        self.job = job

    def get(self, name: str) -> Job:
        return self.job

    def record_chunk(self, name: str, chunk: str, counts: Mapping[str, int]) -> Job | None:
        if chunk in (self.job.chunksDone or set()):
            return None
        self.job = self.job.model_copy(
            update={
                "chunksDone": {*(self.job.chunksDone or set()), chunk},
                "exportLines": counts["lines"],
                "exportFailed": counts["failed"],
                "exportRecords": counts["records"],
                "exportMissing": counts["missing"],
            }
        )
        return self.job

    def save(self, job: Job, expected_status: str) -> None:
        assert self.job.status == expected_status
        self.job = job


class Ids:
    def addresses(self, user_ids: Sequence[str]) -> Mapping[str, str]:
        return {user: user for user in user_ids if "@" in user}


def test_segment_users_are_staged_under_their_segments_topic() -> None:
    now = "2026-11-23T10:00:00Z"
    job = Job(
        jobName="arrivals-1",
        route="new-arrivals",
        kind="item-affinity",
        status=EXPORTING,
        sourceBucket="data",
        sourceKey="input/new-arrivals/items.jsonl",
        sourceIdentity="x",
        createdAt=now,
        updatedAt=now,
        outputPath="s3://data/output/new-arrivals/arrivals-1/",
        chunksTotal=1,
    )
    jobs, objects, events = Jobs(job), Objects(), []

    def only_ses(route: Any) -> Any:
        assert route.destination.type == "ses", "an SES route writes no DynamoDB records"
        return SesContacts(objects, importer=None, address_books=lambda destination: Ids())  # type: ignore[arg-type]

    exporter = ChunkExporter(ROUTES, jobs, objects, events, only_ses, max_receives=3)
    message = ChunkMessage(
        jobName="arrivals-1",
        chunkId="0.0",
        bucket="data",
        key="output/x.out",
        etag="e",
        start=0,
        end=len(OUT),
        generatedAt=now,
    )
    counts = exporter.handle(message)
    # Then two lines were staged, the unmapped segment failed, the user without an address was reported
    assert counts is not None
    assert (counts.lines, counts.written, counts.failed, counts.records, counts.missing) == (3, 2, 1, 3, 1)
    staged = [
        orjson.loads(line) for line in objects.store["exports/arrivals-1/contacts/0.0.jsonl"].splitlines()
    ]
    assert [(row["emailAddress"], row["topics"], row["attributes"]["segments"]) for row in staged] == [
        ("a@example.com", ["arrivals"], ["item-1"]),
        ("b@example.com", ["arrivals"], ["item-1"]),
        ("a@example.com", ["deals"], ["item-2"]),
    ]
    [error] = [
        orjson.loads(line) for line in objects.store["reports/arrivals-1/errors/0.0.jsonl"].splitlines()
    ]
    assert "'item-9' has no topic" in error["reason"] and error["offset"] == OUT.index(
        b'{"input":{"itemId":"item-9"'
    )
    missing = objects.store["reports/arrivals-1/missing-addresses/0.0.jsonl"]
    assert [orjson.loads(line) for line in missing.splitlines()] == [{"userId": "42"}]
    # And the job waits for its import (no completion event yet); a redelivery changes nothing
    assert jobs.job.status == "IMPORTING" and jobs.job.inflight == "IMPORTING" and events == []
    assert exporter.handle(message) is None and jobs.job.status == "IMPORTING"
