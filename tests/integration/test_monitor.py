"""Monitor handler: polls running jobs and submits queued ones; every change is saved and published."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import SOLUTION_ARNS
from tests.integration.conftest import Cloud, object_created, sample_event, upload_job_name

USERS = b'{"userId": "4638"}\n{"userId": "663"}\n'
TICK = sample_event("scheduled_tick.json")


def _arn(name: str) -> str:
    return f"arn:aws:personalize:us-east-1:123456789012:batch-inference-job/{name}"


def _describe(name: str, status: str, reason: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"jobName": name, "batchInferenceJobArn": _arn(name), "status": status}
    if reason:
        job["failureReason"] = reason
    return {"batchInferenceJob": job}


def _submitted(cloud: Cloud, stubber: Any, invoke: Any, key: str = "input/home/users.jsonl") -> str:
    head = cloud.put(key, USERS)
    name = upload_job_name(head, key, "0055AED6DCD90281E5")
    stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": _arn(name)})
    invoke("submit", object_created(head, key))
    cloud.published()
    cloud.seen.clear()
    return name


def test_status_changes_are_saved_and_published_until_active(cloud: Cloud, personalize, invoke) -> None:
    # Given a submitted job that Personalize reports as in progress, then unchanged, then ACTIVE
    _, stubber = personalize
    name = _submitted(cloud, stubber, invoke)
    for status in ("CREATE IN_PROGRESS", "CREATE IN_PROGRESS", "ACTIVE"):
        stubber.add_response(
            "describe_batch_inference_job", _describe(name, status), {"batchInferenceJobArn": _arn(name)}
        )
    # When the monitor ticks three times
    results = [invoke("monitor", TICK) for _ in range(3)]
    # Then only the two real changes were published, in order, and the job left the in-flight index
    assert [r["changed"] for r in results] == [1, 0, 1]
    events = cloud.published()
    assert [e["detail"]["status"] for e in events] == ["CREATE IN_PROGRESS", "ACTIVE"]
    assert events[-1]["detail"] == {
        "jobName": name,
        "jobArn": _arn(name),
        "route": "home",
        "kind": "user-personalization",
        "status": "ACTIVE",
        "outputPath": f"s3://batchrecs-data/output/home/{name}/",
        "failureReason": None,
        "solutionVersionArn": SOLUTION_ARNS["USER_PERSONALIZATION_SOLUTION_VERSION_ARN"],  # the model it runs
        "partOf": None,  # the job of a whole upload, not a part of one run as several jobs
        "parts": None,
    }
    job = cloud.job(name)
    assert job["status"]["S"] == "ACTIVE"
    assert job["inflight"]["S"] == "WAITING"  # for the planner: only watched by the monitor
    # And a further tick has nothing to poll (no Personalize call is stubbed for it)
    assert invoke("monitor", TICK)["polled"] == 0


def test_failed_job_is_published_with_its_reason(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    name = _submitted(cloud, stubber, invoke)
    stubber.add_response(
        "describe_batch_inference_job", _describe(name, "CREATE FAILED", "Input file not found")
    )
    invoke("monitor", TICK)
    [event] = cloud.published()
    assert (event["detail"]["status"], event["detail"]["failureReason"]) == (
        "CREATE FAILED",
        "Input file not found",
    )
    assert cloud.job(name)["status"]["S"] == "CREATE FAILED"


def test_queued_job_is_submitted_when_a_slot_frees(cloud: Cloud, personalize, invoke) -> None:
    # Given a job queued because Personalize was at its limit
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    name = upload_job_name(head, "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_client_error("create_batch_inference_job", service_error_code="LimitExceededException")
    invoke("submit", object_created(head, "input/home/users.jsonl"))
    request = json.loads(cloud.job(name)["request"]["S"])
    # When the monitor ticks while still at the limit, then after a slot frees
    stubber.add_client_error(
        "create_batch_inference_job", service_error_code="LimitExceededException", expected_params=request
    )
    still = invoke("monitor", TICK)
    stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": _arn(name)}, request)
    freed = invoke("monitor", TICK)
    # Then it stays QUEUED (no new event) and is then submitted with its original request
    assert (still["submitted"], still["still_queued"]) == (0, 1)
    assert freed["submitted"] == 1
    assert [e["detail"]["status"] for e in cloud.published()] == ["QUEUED", "CREATE PENDING"]
    job = cloud.job(name)
    assert (job["status"]["S"], job["inflight"]["S"], job["jobArn"]["S"]) == (
        "CREATE PENDING",
        "RUNNING",
        _arn(name),
    )


def test_a_job_that_cannot_be_polled_does_not_block_the_others(cloud: Cloud, personalize, invoke) -> None:
    # Given two running jobs, the first of which Personalize cannot describe right now
    _, stubber = personalize
    first = _submitted(cloud, stubber, invoke, "input/home/a.jsonl")
    second = _submitted(cloud, stubber, invoke, "input/home/b.jsonl")
    order = [
        job["jobName"]["S"]
        for job in sorted(cloud.jobs(), key=lambda j: (j["createdAt"]["S"], j["jobName"]["S"]))
    ]
    stubber.add_client_error("describe_batch_inference_job", service_error_code="ThrottlingException")
    stubber.add_response("describe_batch_inference_job", _describe(order[1], "ACTIVE"))
    # When the monitor ticks, Then the other job still advances and the tick reports the failure
    from batchrecs.monitor.service import MonitorError

    with pytest.raises(MonitorError, match="ThrottlingException"):
        invoke("monitor", TICK)
    statuses = {first: cloud.job(first)["status"]["S"], second: cloud.job(second)["status"]["S"]}
    assert statuses[order[1]] == "ACTIVE"
    assert statuses[order[0]] == "CREATE PENDING"


def test_the_monitor_keeps_one_schedule_per_scheduled_route_in_step_with_the_routes_file(
    cloud: Cloud, invoke, monkeypatch, tmp_path
) -> None:
    import boto3

    from tests.conftest import shipped_routes_with
    from tests.integration.conftest import BUCKET, SCHEDULE_GROUP

    scheduler = boto3.client("scheduler")
    routes = shipped_routes_with(
        tmp_path, "home", schedule="rate(7 days)", standingInput="input/home/all.jsonl"
    )
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    # When the monitor ticks with a scheduled route, Then the route has its schedule, as the template says
    invoke("monitor", TICK)
    schedule = scheduler.get_schedule(Name="home", GroupName=SCHEDULE_GROUP)
    target = schedule["Target"]
    assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == ("rate(7 days)", "UTC")
    assert json.loads(target["Input"]) == {
        "scheduledRun": {"route": "home", "bucket": BUCKET, "scheduledTime": "<aws.scheduler.scheduled-time>"}
    }
    assert target["Arn"].endswith(":function:batchrecs-submitfunction")
    assert target["DeadLetterConfig"]["Arn"].endswith(":batchrecs-failedeventsqueue")
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    # A changed schedule is updated; one deleted by hand comes back; a route without one loses it
    routes = shipped_routes_with(
        tmp_path,
        "home",
        schedule="cron(0 6 ? * MON *)",
        scheduleTimezone="Europe/Paris",
        standingInput="input/home/all.jsonl",
    )
    invoke("monitor", TICK)
    assert (
        scheduler.get_schedule(Name="home", GroupName=SCHEDULE_GROUP)["ScheduleExpression"]
        == "cron(0 6 ? * MON *)"
    )
    scheduler.delete_schedule(Name="home", GroupName=SCHEDULE_GROUP)
    invoke("monitor", TICK)
    assert (
        scheduler.get_schedule(Name="home", GroupName=SCHEDULE_GROUP)["ScheduleExpressionTimezone"]
        == "Europe/Paris"
    )
    monkeypatch.setenv("ROUTES_FILE", str(shipped_routes_with(tmp_path, "home")))
    invoke("monitor", TICK)
    assert scheduler.list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
