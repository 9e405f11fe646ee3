"""The submitter's and the monitor's rules, on recording fakes of their ports (no network, no moto)."""

from __future__ import annotations

import json

from batchrecs.errors import PersonalizeLimitExceeded, PersonalizeRejected
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs.model import CREATE_FAILED, CREATE_PENDING, QUEUED, RECEIVED, REJECTED, Job
from batchrecs.monitor.service import Monitor
from batchrecs.routes.config import parse_routes
from batchrecs.submit.service import Submitter, Upload

from tests.fakes import FakeEvents, FakeJobStore, FakeObjects, FakePersonalize

ARN = "arn:aws:personalize:us-east-1:123456789012:solution/home/1"
ROUTES = parse_routes(
    f"""
routes:
  home:
    kind: user-personalization
    solutionVersionArn: {ARN}
    numResults: 5
    destination: {{type: dynamodb}}
""",
    {},
)
ROLE = "arn:aws:iam::123456789012:role/personalize"
NOW = "2026-11-23T10:00:00Z"


def _submitter() -> tuple[Submitter, FakeJobStore, FakeObjects, FakePersonalize, FakeEvents]:
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    submitter = Submitter(ROUTES, jobs, objects, personalize, events, ROLE, clock=lambda: NOW)
    return submitter, jobs, objects, personalize, events


def _upload(objects: FakeObjects, key: str, body: bytes, identity: str = "seq-1") -> Upload:
    objects.put("data", key, body)
    return Upload(bucket="data", key=key, size=len(body), identity=identity)


def test_a_valid_upload_is_staged_and_submitted_with_the_routes_options() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    job = submitter.handle(_upload(objects, "input/home/u.jsonl", b'{"userId": "1"}\n{"userId": "2"}\n'))
    assert job is not None and job.status == CREATE_PENDING
    [(kind, request)] = personalize.created
    assert (request["solutionVersionArn"], request["numResults"], request["roleArn"]) == (ARN, 5, ROLE)
    staged = request["jobInput"]["s3DataSource"]["path"].removeprefix("s3://data/")
    assert objects.read("data", staged) == b'{"userId":"1"}\n{"userId":"2"}\n'
    assert request["jobOutput"]["s3DataDestination"]["path"] == f"s3://data/output/home/{job.jobName}/"
    assert [detail["status"] for detail in events.of(JOB_STATE_CHANGE)] == [CREATE_PENDING]


def test_a_redelivered_upload_event_starts_nothing_more() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    upload = _upload(objects, "input/home/u.jsonl", b'{"userId": "1"}\n')
    first, again = submitter.handle(upload), submitter.handle(upload)
    assert first is not None and again is not None and first.jobName == again.jobName
    assert len(personalize.created) == 1 and len(events.of(JOB_STATE_CHANGE)) == 1


def test_an_invalid_upload_is_rejected_with_a_line_numbered_report_and_nothing_submitted() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    job = submitter.handle(_upload(objects, "input/home/bad.jsonl", b'{"userId": "1"}\n{"userId": 2}\n'))
    assert job is not None and job.status == REJECTED and personalize.created == []
    report = objects.json("data", "rejected/home/bad.jsonl.report.json")
    assert [problem["line"] for problem in report["problems"]] == [2]
    assert objects.read("data", "input/home/bad.jsonl") == b'{"userId": "1"}\n{"userId": 2}\n'  # kept as is


def test_an_upload_at_personalizes_limit_is_queued_and_a_rejected_request_fails() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    personalize.create_errors = [PersonalizeLimitExceeded("5 running"), PersonalizeRejected("bad filter")]
    queued = submitter.handle(_upload(objects, "input/home/a.jsonl", b'{"userId": "1"}\n'))
    failed = submitter.handle(_upload(objects, "input/home/b.jsonl", b'{"userId": "1"}\n'))
    assert queued is not None and (queued.status, queued.inflight) == (QUEUED, "QUEUED")
    assert failed is not None and (failed.status, failed.failureReason) == (CREATE_FAILED, "bad filter")


# ------------------------------------------------------------------ monitor


def _stored(name: str, status: str, created: str, **fields: object) -> Job:
    job = Job(
        jobName=name,
        route="home",
        kind="user-personalization",
        status=RECEIVED,
        sourceBucket="data",
        sourceKey=f"input/home/{name}",
        sourceIdentity="x",
        createdAt=created,
        updatedAt=created,
        request=json.dumps({"jobName": name, "solutionVersionArn": ARN}),
        **fields,  # type: ignore[arg-type]
    )
    return job.moved_to(status, created)


def test_a_tick_records_each_status_change_once_and_submits_queued_jobs_oldest_first() -> None:
    running = _stored("run-1", CREATE_PENDING, "2026-11-23T09:00:00Z", jobArn="arn:run-1")
    old, new = _stored("q-1", QUEUED, "2026-11-23T09:01:00Z"), _stored("q-2", QUEUED, "2026-11-23T09:02:00Z")
    jobs, personalize, events = FakeJobStore(running, new, old), FakePersonalize(), FakeEvents()
    personalize.statuses["arn:run-1"] = ("ACTIVE", None)
    monitor = Monitor(jobs, personalize, events, clock=lambda: NOW)
    summary = monitor.tick()
    assert (summary.polled, summary.submitted, summary.changed) == (1, 2, 3)
    assert [request["jobName"] for _, request in personalize.created] == ["q-1", "q-2"]
    assert jobs.get("run-1").status == "ACTIVE"  # type: ignore[union-attr]
    # a second tick with nothing new changes nothing
    personalize.statuses.update(
        {
            "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/q-1": ("CREATE PENDING", None),
            "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/q-2": ("CREATE PENDING", None),
        }
    )
    assert monitor.tick().changed == 0
    assert len(events.of(JOB_STATE_CHANGE)) == 3


def test_queued_jobs_wait_while_personalize_is_at_its_limit() -> None:
    jobs = FakeJobStore(
        _stored("q-1", QUEUED, "2026-11-23T09:01:00Z"), _stored("q-2", QUEUED, "2026-11-23T09:02:00Z")
    )
    personalize, events = FakePersonalize(), FakeEvents()
    personalize.create_errors = [PersonalizeLimitExceeded("5 running")]
    summary = Monitor(jobs, personalize, events, clock=lambda: NOW).tick()
    assert (summary.submitted, summary.still_queued, summary.changed) == (0, 2, 0)
    assert events.published == []  # still QUEUED: no change to announce
