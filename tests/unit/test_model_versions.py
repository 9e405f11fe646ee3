"""Which model a job runs: a route pins ``solutionVersionArn``, or names ``solutionArn`` and each job runs
the solution's newest ACTIVE version at the moment it is submitted to Personalize (issue #14)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from batchrecs.errors import ConfigError, PersonalizeUnavailable
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs.model import CREATE_PENDING, QUEUED, REJECTED
from batchrecs.monitor.service import Monitor
from batchrecs.routes.config import parse_routes
from batchrecs.sinks.dynamodb.records import RecordContext
from batchrecs.submit.service import Submitter, Upload

from tests.fakes import FakeEvents, FakeJobStore, FakeObjects, FakePersonalize

SOLUTION = "arn:aws:personalize:us-east-1:123456789012:solution/weekly"
ROUTES = parse_routes(
    f"""
routes:
  weekly:
    kind: user-personalization
    solutionArn: {SOLUTION}
    destination: {{type: dynamodb}}
""",
    {},
)
NOW = "2026-12-01T10:00:00Z"


def _submit(personalize: FakePersonalize, name: str = "u.jsonl") -> tuple[FakeJobStore, FakeEvents, object]:
    jobs, objects, events = FakeJobStore(), FakeObjects(), FakeEvents()
    key = f"input/weekly/{name}"
    objects.put("data", key, b'{"userId": "1"}\n')
    submitter = Submitter(
        ROUTES, jobs, objects, personalize, events, "arn:aws:iam::123456789012:role/p", lambda: NOW
    )
    job = submitter.handle(Upload(bucket="data", key=key, size=16, identity="seq-1"))
    return jobs, events, job


def test_a_solution_route_runs_the_newest_active_version_skipping_ones_in_training_or_failed() -> None:
    personalize = FakePersonalize()
    personalize.versions[SOLUTION] = [  # oldest first
        (f"{SOLUTION}/v1", "ACTIVE"),
        (f"{SOLUTION}/v2", "ACTIVE"),
        (f"{SOLUTION}/v3", "CREATE FAILED"),
        (f"{SOLUTION}/v4", "CREATE IN_PROGRESS"),
    ]
    jobs, events, job = _submit(personalize)
    [(_, request)] = personalize.created
    assert request["solutionVersionArn"] == f"{SOLUTION}/v2" and "solutionArn" not in request
    assert job.status == CREATE_PENDING and job.solutionVersionArn == f"{SOLUTION}/v2"  # type: ignore[attr-defined]
    assert orjson.loads(job.request)["solutionVersionArn"] == f"{SOLUTION}/v2"  # type: ignore[attr-defined]
    [change] = events.of(JOB_STATE_CHANGE)
    assert change["solutionVersionArn"] == f"{SOLUTION}/v2"


def test_without_an_active_version_the_job_is_rejected_with_what_the_solution_has() -> None:
    personalize = FakePersonalize()
    personalize.versions[SOLUTION] = [
        (f"{SOLUTION}/v1", "CREATE FAILED"),
        (f"{SOLUTION}/v2", "CREATE IN_PROGRESS"),
    ]
    jobs, events, job = _submit(personalize)
    assert personalize.created == [] and job.status == REJECTED  # type: ignore[attr-defined]
    assert job.failureReason == (  # type: ignore[attr-defined]
        f"solution {SOLUTION} has no ACTIVE solution version (1 CREATE FAILED, 1 CREATE IN_PROGRESS): "
        "train one, or pin the route to a solutionVersionArn"
    )
    assert [change["status"] for change in events.of(JOB_STATE_CHANGE)] == [REJECTED]  # alerted
    assert job.inflight is None  # type: ignore[attr-defined]  # nothing retries it


def test_a_solution_that_does_not_exist_rejects_the_job() -> None:
    jobs, events, job = _submit(FakePersonalize())
    assert job.status == REJECTED  # type: ignore[attr-defined]
    assert job.failureReason.startswith(f"solution {SOLUTION}: ResourceNotFoundException")  # type: ignore[attr-defined]


def test_when_personalize_does_not_answer_the_job_waits_and_then_runs_the_version_newest_by_then() -> None:
    # Given ListSolutionVersions throttled at submit
    personalize = FakePersonalize()
    personalize.versions[SOLUTION] = [(f"{SOLUTION}/v1", "ACTIVE")]
    original = personalize.solution_versions
    calls = iter([PersonalizeUnavailable("ThrottlingException: Rate exceeded")])

    def throttled_once(solution_arn: str):  # type: ignore[no-untyped-def]
        error = next(calls, None)
        if error is not None:
            raise error
        return original(solution_arn)

    personalize.solution_versions = throttled_once  # type: ignore[method-assign]
    jobs, events, job = _submit(personalize)
    assert job.status == QUEUED and personalize.created == []  # type: ignore[attr-defined]
    # When a new version finished training meanwhile and the monitor submits the queued job
    personalize.versions[SOLUTION].append((f"{SOLUTION}/v2", "ACTIVE"))
    Monitor(jobs, personalize, events, clock=lambda: NOW).tick()
    # Then it runs the version that is newest when it is actually submitted
    [(_, request)] = personalize.created
    assert request["solutionVersionArn"] == f"{SOLUTION}/v2"


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("", "name the model with solutionVersionArn"),
        (f"    solutionArn: {SOLUTION}\n    solutionVersionArn: {SOLUTION}/v1\n", "not both and not neither"),
        ("    solutionArn: arn:aws:personalize:us-east-1:123456789012:solution/x/1\n", "field 'solutionArn'"),
    ],
)
def test_a_route_names_its_model_one_way(model: str, message: str) -> None:
    text = f"routes:\n  r:\n    kind: popularity\n{model}    destination: {{type: dynamodb}}\n"
    with pytest.raises(ConfigError, match=message):
        parse_routes(text, {})


def test_every_record_names_the_model_that_made_it() -> None:
    ctx = RecordContext.for_job("weekly", "w-1", datetime(2026, 12, 1, tzinfo=UTC), 30, f"{SOLUTION}/v2")
    tail = orjson.loads(b"{" + ctx.encoded().tail + b"}")
    assert tail["solutionVersionArn"] == {"S": f"{SOLUTION}/v2"}
    pinned_before = RecordContext.for_job("weekly", "w-1", datetime(2026, 12, 1, tzinfo=UTC), 30)
    assert "solutionVersionArn" not in orjson.loads(b"{" + pinned_before.encoded().tail + b"}")
