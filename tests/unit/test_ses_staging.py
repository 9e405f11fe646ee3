"""A chunk of an SES segment route: users staged per segment's topic, unmapped segments and users
without an address counted and reported, and the job moved on to IMPORTING once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from batchrecs.export.worker import ChunkExporter
from batchrecs.formats.events import ChunkMessage
from batchrecs.jobs.model import EXPORTING, Job
from batchrecs.routes.config import parse_routes
from batchrecs.sinks.ses.destination import SesContacts

from tests.fakes import FakeEvents, FakeJobStore, FakeObjects, FakeQueue

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
    jobs, objects, events = FakeJobStore(job), FakeObjects(), FakeEvents()
    objects.put("data", "output/x.out", OUT)

    def only_ses(route: Any) -> Any:
        assert route.destination.type == "ses", "an SES route writes no DynamoDB records"
        return SesContacts(objects, importer=None, address_books=lambda destination: Ids())  # type: ignore[arg-type]

    exporter = ChunkExporter(ROUTES, jobs, objects, events, only_ses, max_receives=3, queue=FakeQueue())
    message = ChunkMessage(
        jobName="arrivals-1",
        chunkId="0.0",
        bucket="data",
        key="output/x.out",
        etag=objects.etag("data", "output/x.out"),
        start=0,
        end=len(OUT),
        generatedAt=now,
    )
    counts = exporter.handle(message)
    # Then two lines were staged, the unmapped segment failed, the user without an address was reported
    assert counts is not None
    assert (counts.lines, counts.written, counts.failed, counts.records, counts.missing) == (3, 2, 1, 3, 1)
    staged = [
        orjson.loads(line)
        for line in objects.read("data", "exports/arrivals-1/contacts/0.0.jsonl").splitlines()
    ]
    assert [(row["emailAddress"], row["topics"], row["attributes"]["segments"]) for row in staged] == [
        ("a@example.com", ["arrivals"], ["item-1"]),
        ("b@example.com", ["arrivals"], ["item-1"]),
        ("a@example.com", ["deals"], ["item-2"]),
    ]
    [error] = [
        orjson.loads(line)
        for line in objects.read("data", "reports/arrivals-1/errors/0.0.jsonl").splitlines()
    ]
    assert "'item-9' has no topic" in error["reason"] and error["offset"] == OUT.index(
        b'{"input":{"itemId":"item-9"'
    )
    missing = objects.read("data", "reports/arrivals-1/missing-addresses/0.0.jsonl")
    assert [orjson.loads(line) for line in missing.splitlines()] == [{"userId": "42"}]
    # And the job waits for its import (no completion event yet); a redelivery changes nothing
    assert (
        jobs.jobs["arrivals-1"].status == "IMPORTING"
        and jobs.jobs["arrivals-1"].inflight == "IMPORTING"
        and events.published == []
    )
    assert exporter.handle(message) is None and jobs.jobs["arrivals-1"].status == "IMPORTING"


def test_a_themes_routes_contacts_carry_the_theme_and_only_the_items_relevant_enough() -> None:
    from batchrecs.formats.output_lines import parse_out_line
    from batchrecs.jobs.progress import ChunkCounts, ChunkWork

    routes = parse_routes(
        f"""
routes:
  picks:
    kind: related-items
    solutionVersionArn: {ARN}
    themes: {{itemNameField: TITLE, minThemeScore: 0.1}}
    destination: {{type: ses, contactList: list, topic: picks, address: {{type: userId}}}}
""",
        {},
    )
    route = routes.get("picks")
    line = (
        b'{"input":{"itemId":"a@example.com"},"output":{"recommendedItems":["36","50"],'
        b'"theme":"Strong female leads","itemsThemeRelevanceScores":[0.2,0.05]},"error":null}'
    )
    objects, counts = FakeObjects(), ChunkCounts(lines=1)
    message = ChunkMessage(
        jobName="picks-1",
        chunkId="0.0",
        bucket="data",
        key="k",
        etag="e",
        start=0,
        end=1,
        generatedAt="2026-12-01T00:00:00Z",
    )
    from datetime import UTC, datetime

    work = ChunkWork(
        message,
        route,
        datetime(2026, 12, 1, tzinfo=UTC),
        iter([(0, parse_out_line(line, route.kind))]),
        counts,
        lambda o, r: None,  # type: ignore[list-item]
    )
    SesContacts(objects, importer=None, address_books=lambda destination: Ids()).write_chunk(work)  # type: ignore[arg-type]
    [staged] = [
        orjson.loads(row) for row in objects.read("data", "exports/picks-1/contacts/0.0.jsonl").splitlines()
    ]
    assert (staged["attributes"]["theme"], staged["attributes"]["items"]) == ("Strong female leads", ["36"])
    assert counts.below_theme == 1
