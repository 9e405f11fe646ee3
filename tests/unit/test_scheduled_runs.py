"""A route's schedule firing submits its standing input exactly as an upload would: one job per scheduled
time however often a tick is delivered, a REJECTED job when the input is missing (issue #14, part 2)."""

from __future__ import annotations

import pytest
from batchrecs.errors import ConfigError
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs.model import CREATE_PENDING, REJECTED
from batchrecs.jobs.naming import scheduled_job_name
from batchrecs.routes.config import parse_routes
from batchrecs.submit.service import Submitter

from tests.fakes import FakeEvents, FakeJobStore, FakeObjects, FakePersonalize

VERSION = "arn:aws:personalize:us-east-1:123456789012:solution/weekly/v1"
ROUTES = parse_routes(
    f"""
routes:
  weekly:
    kind: user-personalization
    solutionVersionArn: {VERSION}
    schedule: cron(0 6 ? * MON *)
    scheduleTimezone: Europe/Paris
    standingInput: input/weekly/all-users.jsonl
    destination: {{type: dynamodb}}
  home:
    kind: user-personalization
    solutionVersionArn: {VERSION}
    destination: {{type: dynamodb}}
""",
    {},
)
MONDAY, NEXT_MONDAY = "2026-12-07T05:00:00Z", "2026-12-14T05:00:00Z"


def _submitter(body: bytes | None = b'{"userId": "1"}\n{"userId": "2"}\n'):  # type: ignore[no-untyped-def]
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    if body is not None:
        objects.put("data", "input/weekly/all-users.jsonl", body)
    submitter = Submitter(ROUTES, jobs, objects, personalize, events, "arn:aws:iam::1:role/p", lambda: MONDAY)
    return submitter, jobs, objects, personalize, events


def test_each_tick_is_one_job_named_by_its_time_and_a_repeated_tick_starts_nothing_more() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    first = submitter.handle_scheduled("weekly", MONDAY, "data")
    again = submitter.handle_scheduled("weekly", MONDAY, "data")  # the same tick, delivered twice
    later = submitter.handle_scheduled("weekly", NEXT_MONDAY, "data")
    assert first is not None and again is not None and later is not None
    assert (
        first.jobName == again.jobName == scheduled_job_name("weekly", "input/weekly/all-users.jsonl", MONDAY)
    )
    assert first.jobName.startswith("weekly-all-users-20261207T0500-") and len(first.jobName) <= 63
    assert later.jobName != first.jobName and len(personalize.created) == 2
    assert (first.status, first.sourceKey) == (CREATE_PENDING, "input/weekly/all-users.jsonl")
    # exactly as an upload: the standing input was validated and staged, and the request names the route's model
    [(_, request), _] = personalize.created
    staged = request["jobInput"]["s3DataSource"]["path"].removeprefix("s3://data/")
    assert objects.read("data", staged) == b'{"userId":"1"}\n{"userId":"2"}\n'


def test_a_missing_standing_input_is_a_rejected_job_saying_so_and_an_invalid_one_is_rejected_as_uploads_are() -> (
    None
):
    submitter, jobs, objects, personalize, events = _submitter(body=None)
    job = submitter.handle_scheduled("weekly", MONDAY, "data")
    assert job is not None and job.status == REJECTED and personalize.created == []
    assert job.failureReason == "the standing input s3://data/input/weekly/all-users.jsonl does not exist"
    assert [e["status"] for e in events.of(JOB_STATE_CHANGE)] == [REJECTED]  # alerted
    report = objects.json("data", f"rejected/weekly/{job.jobName}/all-users.jsonl.report.json")
    assert report["fileProblem"]["found"] == job.failureReason
    submitter, jobs, objects, personalize, events = _submitter(body=b'{"userId": 7}\n')
    job = submitter.handle_scheduled("weekly", MONDAY, "data")
    assert job is not None and job.status == REJECTED
    report = objects.json("data", f"rejected/weekly/{job.jobName}/all-users.jsonl.report.json")
    assert [problem["line"] for problem in report["problems"]] == [1]


def test_writing_a_new_standing_input_starts_no_job_of_its_own() -> None:
    from batchrecs.submit.service import Upload

    submitter, jobs, objects, personalize, events = _submitter()
    upload = Upload(bucket="data", key="input/weekly/all-users.jsonl", size=32, identity="seq-9")
    assert submitter.handle(upload) is None and jobs.jobs == {}
    other = Upload(bucket="data", key="input/weekly/extra.jsonl", size=32, identity="seq-9")
    objects.put("data", other.key, b'{"userId": "3"}\n')
    assert submitter.handle(other) is not None  # any other file of the route is an upload as usual


def test_a_schedule_of_a_route_that_no_longer_has_one_is_ignored() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    assert submitter.handle_scheduled("home", MONDAY, "data") is None
    assert submitter.handle_scheduled("gone", MONDAY, "data") is None
    assert jobs.jobs == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("    schedule: rate(7 days)\n", "a schedule runs the route's standingInput: give both, or neither"),
        ("    standingInput: input/r/all.jsonl\n", "give both, or neither"),
        ("    schedule: every monday\n    standingInput: input/r/all.jsonl\n", "field 'schedule'"),
        ("    schedule: rate(1 day)\n    standingInput: input/other/all.jsonl\n", "a key under input/r/"),
        ("    schedule: rate(1 day)\n    standingInput: input/r/\n", "field 'standingInput'"),
        ("    scheduleTimezone: Europe/Paris\n", "scheduleTimezone needs a schedule"),
        (
            "    schedule: rate(1 day)\n    scheduleTimezone: not a zone\n    standingInput: input/r/a.jsonl\n",
            "scheduleTimezone",
        ),
    ],
)
def test_a_schedule_is_checked_when_the_routes_are_loaded(fields: str, message: str) -> None:
    text = f"routes:\n  r:\n    kind: popularity\n    solutionVersionArn: {VERSION}\n{fields}    destination: {{type: dynamodb}}\n"
    with pytest.raises(ConfigError, match=message):
        parse_routes(text, {})
