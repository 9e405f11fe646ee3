"""A route's refresh before its batch job: import fresh data, train a new solution version, then run the
batch job on that version; each step started once, waited for over ticks, failed with its reason
(issue #14, part 3)."""

from __future__ import annotations

import orjson
import pytest
from batchrecs.errors import ConfigError, PersonalizeLimitExceeded, PersonalizeRejected
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs import refresh
from batchrecs.jobs.model import CREATE_FAILED, CREATE_PENDING, DATA_IMPORTING, TRAINING, Job
from batchrecs.monitor.service import Monitor
from batchrecs.routes.config import parse_routes
from batchrecs.submit.service import Submitter, Upload

from tests.fakes import FakeEvents, FakeJobStore, FakeObjects, FakePersonalize

SOLUTION = "arn:aws:personalize:us-east-1:123456789012:solution/weekly"
DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/shop/INTERACTIONS"
IMPORT = "arn:aws:personalize:us-east-1:123456789012:dataset-import-job/"
ROLE = "arn:aws:iam::123456789012:role/personalize"
NOW = "2026-12-01T10:00:00Z"


def _routes(refresh_yaml: str):  # type: ignore[no-untyped-def]
    return parse_routes(
        f"""
routes:
  weekly:
    kind: user-personalization
    solutionArn: {SOLUTION}
    refresh:
{refresh_yaml}
    destination: {{type: dynamodb}}
""",
        {},
    )


BOTH = _routes(
    f"      datasetImport: {{datasetArn: {DATASET}, dataKey: datasets/interactions.csv}}\n"
    "      train: {trainingMode: UPDATE}"
)


def _submitted(routes=BOTH) -> tuple[Job, FakeJobStore, FakeEvents, FakePersonalize, Monitor]:  # type: ignore[no-untyped-def]
    jobs, objects, events, personalize = FakeJobStore(), FakeObjects(), FakeEvents(), FakePersonalize()
    objects.put("data", "input/weekly/u.jsonl", b'{"userId": "1"}\n')
    job = Submitter(routes, jobs, objects, personalize, events, ROLE, lambda: NOW).handle(
        Upload(bucket="data", key="input/weekly/u.jsonl", size=16, identity="seq-1")
    )
    assert job is not None
    monitor = Monitor(jobs, personalize, events, clock=lambda: NOW, routes=routes)
    return job, jobs, events, personalize, monitor


def test_an_upload_of_a_refreshing_route_imports_then_trains_then_runs_the_trained_version() -> None:
    job, jobs, events, personalize, monitor = _submitted()
    assert (job.status, job.inflight) == (DATA_IMPORTING, "REFRESHING") and personalize.created == []
    # the import starts on the next tick, once, however many ticks it runs for
    for _ in range(3):
        monitor.tick()
    arn = IMPORT + job.jobName
    assert personalize.started == {arn: (DATASET, "s3://data/datasets/interactions.csv", ROLE, "INCREMENTAL")}
    assert jobs.get(job.jobName).refreshImportArn == arn  # type: ignore[union-attr]
    personalize.step_statuses[arn] = ("ACTIVE", None)
    monitor.tick()  # -> TRAINING
    monitor.tick()  # training starts
    monitor.tick()  # still training
    version = f"{SOLUTION}/{job.jobName}"
    assert personalize.started[version] == (SOLUTION, "UPDATE") and len(personalize.started) == 2
    personalize.step_statuses[version] = ("ACTIVE", None)
    personalize.versions[SOLUTION] = [(f"{SOLUTION}/other-newer", "ACTIVE")]  # auto-training finished too
    monitor.tick()
    # the batch job runs the version trained for it, and every step was a state change
    [(_, request)] = personalize.created
    assert request["solutionVersionArn"] == version and "solutionArn" not in request
    done = jobs.get(job.jobName)
    assert done is not None and (done.status, done.solutionVersionArn) == (CREATE_PENDING, version)
    assert [e["status"] for e in events.of(JOB_STATE_CHANGE)] == [DATA_IMPORTING, TRAINING, CREATE_PENDING]


@pytest.mark.parametrize("step", [DATA_IMPORTING, TRAINING])
def test_a_failed_step_fails_the_job_with_the_step_and_the_reason_once(step: str) -> None:
    job, jobs, events, personalize, monitor = _submitted()
    arn = IMPORT + job.jobName
    if step == TRAINING:
        personalize.step_statuses[arn] = ("ACTIVE", None)
        monitor.tick()
        monitor.tick()
        arn = f"{SOLUTION}/{job.jobName}"
    monitor.tick()  # started
    personalize.step_statuses[arn] = ("CREATE FAILED", "Invalid data: no TIMESTAMP column")
    monitor.tick()
    monitor.tick()
    failed = jobs.get(job.jobName)
    name = "dataset import" if step == DATA_IMPORTING else "training"
    assert failed is not None and (failed.status, failed.inflight) == (CREATE_FAILED, None)
    assert failed.failureReason == f"refresh {name} failed: {arn}: Invalid data: no TIMESTAMP column"
    assert [e["status"] for e in events.of(JOB_STATE_CHANGE)][-1] == CREATE_FAILED  # alerted, once
    assert personalize.created == []


def test_not_now_waits_for_the_next_tick_and_no_means_the_job_fails() -> None:
    job, jobs, events, personalize, monitor = _submitted()
    personalize.step_errors = [PersonalizeLimitExceeded("ResourceInUseException: the dataset is importing")]
    monitor.tick()
    assert jobs.get(job.jobName).refreshImportArn is None  # type: ignore[union-attr]  # waits
    monitor.tick()
    assert jobs.get(job.jobName).refreshImportArn == IMPORT + job.jobName  # type: ignore[union-attr]
    job, jobs, events, personalize, monitor = _submitted()
    personalize.step_errors = [PersonalizeRejected("ResourceNotFoundException: no dataset")]
    monitor.tick()
    failed = jobs.get(job.jobName)
    assert failed is not None and failed.status == CREATE_FAILED
    assert (
        failed.failureReason
        == "refresh dataset import failed: could not start: ResourceNotFoundException: no dataset"
    )


def test_a_tick_whose_save_was_lost_finds_the_step_it_started_instead_of_starting_another() -> None:
    job, jobs, events, personalize, monitor = _submitted()
    route = BOTH.get("weekly")
    assert route.refresh is not None
    first = refresh.advance(job, route.refresh, personalize, NOW)
    again = refresh.advance(job, route.refresh, personalize, NOW)  # the first one's save never happened
    assert first.refreshImportArn == again.refreshImportArn and len(personalize.started) == 1


def test_a_data_only_refresh_runs_the_newest_version_after_the_import() -> None:
    routes = _routes(f"      datasetImport: {{datasetArn: {DATASET}, dataKey: datasets/, importMode: FULL}}")
    job, jobs, events, personalize, monitor = _submitted(routes)
    personalize.versions[SOLUTION] = [(f"{SOLUTION}/v7", "ACTIVE")]
    monitor.tick()
    personalize.step_statuses[IMPORT + job.jobName] = ("ACTIVE", None)
    monitor.tick()
    [(_, request)] = personalize.created
    assert request["solutionVersionArn"] == f"{SOLUTION}/v7"
    assert orjson.loads(jobs.get(job.jobName).request)["solutionVersionArn"] == f"{SOLUTION}/v7"  # type: ignore[union-attr, arg-type]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("      {}", "a refresh names datasetImport, train, or both"),
        (f"      datasetImport: {{datasetArn: {DATASET}, dataKey: input/x.csv}}", "dataKey"),
        (
            "      datasetImport: {datasetArn: arn:aws:personalize:us-east-1:1:dataset/x, dataKey: datasets/a}",
            "datasetArn",
        ),
        ("      train: {trainingMode: SOMETIMES}", "trainingMode"),
    ],
)
def test_a_refresh_is_checked_when_the_routes_are_loaded(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _routes(body)


def test_training_needs_a_route_that_names_its_solution() -> None:
    text = (
        "routes:\n  pinned:\n    kind: popularity\n"
        f"    solutionVersionArn: {SOLUTION}/v1\n    refresh: {{train: {{}}}}\n    destination: {{type: dynamodb}}\n"
    )
    with pytest.raises(ConfigError, match="refresh.train makes a new version of the route's solution"):
        parse_routes(text, {})
