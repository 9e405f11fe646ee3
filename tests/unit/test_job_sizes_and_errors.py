"""Sizes and answers of the API (issue #15, part 3): numResults bounds per kind (a segment job takes up to
5,000,000 users per segment, and a line of a million users exports in flat memory), and what a missing
solution version, filter or role means: REJECTED with the service's message, not a retry."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import orjson
import pytest
from batchrecs.errors import ConfigError, PersonalizeRouteRefused
from batchrecs.formats.events import ChunkMessage
from batchrecs.formats.output_lines import parse_segment_line
from batchrecs.jobs.lifecycle import start_job
from batchrecs.jobs.model import RECEIVED, REJECTED, Job
from batchrecs.jobs.progress import ChunkCounts, ChunkWork
from batchrecs.routes.config import JobKind, parse_routes
from batchrecs.sinks.dynamodb.destination import DynamoDBRecords

from tests.fakes import FakePersonalize

VERSION = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"


def _route(kind: str, results: int):  # type: ignore[no-untyped-def]
    text = f"routes:\n  r:\n    kind: {kind}\n    solutionVersionArn: {VERSION}\n    numResults: {results}\n    destination: {{type: dynamodb}}\n"
    return parse_routes(text, {}).get("r")


def test_numresults_is_bounded_per_kind() -> None:
    assert _route("item-affinity", 1_000_000).numResults == 1_000_000  # users per segment
    with pytest.raises(ConfigError, match="at most 5000000|less than or equal to 5000000"):
        _route("item-affinity", 5_000_001)
    with pytest.raises(ConfigError, match="numResults is at most 500 for user-personalization"):
        _route("user-personalization", 501)


class CountingSink:
    written = superseded = retries = throttles = 0

    def put(self, key: tuple[str, str], item: bytes) -> None:
        self.written += 1

    def delete(self, key: tuple[str, str]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def test_a_segment_line_of_a_million_users_exports_in_flat_memory() -> None:
    route = _route("item-affinity", 1_000_000)
    users = [f"user-{n:07d}" for n in range(1_000_000)]
    line = orjson.dumps({"input": {"itemId": "105"}, "output": {"usersList": users}, "error": None})
    del users
    sink = CountingSink()
    message = ChunkMessage(
        jobName="j",
        chunkId="0.0",
        bucket="b",
        key="k",
        etag="e",
        start=0,
        end=1,
        generatedAt="2026-12-01T00:00:00Z",
    )
    counts = ChunkCounts(lines=1)
    tracemalloc.start()
    parsed = parse_segment_line(line, JobKind.ITEM_AFFINITY)
    work = ChunkWork(
        message, route, datetime(2026, 12, 1, tzinfo=UTC), iter([(0, parsed)]), counts, lambda o, r: None
    )  # type: ignore[list-item]
    DynamoDBRecords(lambda route: sink).write_chunk(work)  # type: ignore[arg-type]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sink.written == 1_000_000 and counts.records == 1_000_000
    print(
        f"a {len(line) / 1e6:.1f} MB segment line of 1,000,000 users: peak {peak / 1e6:.1f} MB while exported"
    )
    assert peak < 5_000_000  # the users are streamed from the line's bytes, never held as a list


def _received() -> Job:
    return Job(
        jobName="j",
        route="r",
        kind="user-personalization",
        status=RECEIVED,
        sourceBucket="b",
        sourceKey="input/r/u.jsonl",
        sourceIdentity="x",
        createdAt="2026-12-01T00:00:00Z",
        updatedAt="2026-12-01T00:00:00Z",
        request=orjson.dumps({"jobName": "j", "solutionVersionArn": VERSION}).decode(),
    )


def test_a_job_naming_what_does_not_exist_is_rejected_with_the_services_message() -> None:
    personalize = FakePersonalize()
    personalize.create_errors = [
        PersonalizeRouteRefused("ResourceNotFoundException: Could not find filter arn:...:filter/x")
    ]
    job = _received()
    rejected = start_job(job, personalize, "2026-12-01T00:00:01Z")
    assert (rejected.status, rejected.inflight) == (REJECTED, None)
    assert rejected.failureReason == "ResourceNotFoundException: Could not find filter arn:...:filter/x"


def test_tags_of_the_file_and_the_route_are_merged_onto_every_job_and_checked_at_load() -> None:
    from batchrecs.submit.request import build_request

    text = f"""
tags: {{team: data, env: prod}}
routes:
  home:
    kind: user-personalization
    solutionVersionArn: {VERSION}
    tags: {{env: test, cost-center: "42"}}
    destination: {{type: dynamodb}}
  plain:
    kind: popularity
    solutionVersionArn: {VERSION}
    destination: {{type: dynamodb}}
"""
    routes = parse_routes(text, {})
    request = build_request(routes.get("home"), "j", "s3://b/i", "s3://b/o/", "arn:aws:iam::1:role/r")
    assert request["tags"] == [
        {"tagKey": "cost-center", "tagValue": "42"},
        {"tagKey": "env", "tagValue": "test"},  # the route's value wins
        {"tagKey": "team", "tagValue": "data"},
    ]
    assert routes.get("plain").tags == {"team": "data", "env": "prod"}
    many = ", ".join(f"k{i}: v" for i in range(51))
    with pytest.raises(ConfigError, match="route 'home' field 'tags'"):
        parse_routes(text.replace("{team: data, env: prod}", "{" + many + "}"), {})
    with pytest.raises(ConfigError, match="tags"):
        parse_routes(text.replace("team: data", "'aws:team': data"), {})  # "aws:" keys are AWS's


def test_too_many_tags_at_create_is_a_rejected_job() -> None:
    personalize = FakePersonalize()
    personalize.create_errors = [PersonalizeRouteRefused("TooManyTagsException: 51 tags")]
    job = _received()
    assert start_job(job, personalize, "2026-12-01T00:00:01Z").status == REJECTED
