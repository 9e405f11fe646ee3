"""Submit handler: S3 event -> validation -> staged copy -> Personalize job (stubbed) -> jobs table + event."""

from __future__ import annotations

import json
from typing import Any

import orjson
from botocore.stub import Stubber

from tests.integration.conftest import BUCKET, ROLE_ARN, Cloud, object_created, solution, upload_job_name

USERS = b'\xef\xbb\xbf{"userId": "4638"}\r\n{"userId": "663"}\r\n\r\n{"userId": "4638"}\r\n{"userId": "3384"}'


def _expected_home_request(name: str) -> dict[str, Any]:
    return {
        "jobName": name,
        "solutionVersionArn": solution("USER_PERSONALIZATION_SOLUTION_VERSION_ARN"),
        "numResults": 25,
        "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/staged/home/{name}/users.jsonl"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/output/home/{name}/"}},
        "roleArn": ROLE_ARN,
        "batchInferenceJobConfig": {
            "itemExplorationConfig": {"explorationWeight": "0.3", "explorationItemAgeCutOff": "30"}
        },
        "tags": [{"tagKey": "app", "tagValue": "batchrecs"}],  # the routes file's tags
    }


def _arn(name: str) -> str:
    return f"arn:aws:personalize:us-east-1:123456789012:batch-inference-job/{name}"


def test_upload_is_normalised_and_submitted_with_the_route_options(cloud: Cloud, personalize, invoke) -> None:
    # Given a messy but valid upload under input/home/ (BOM, CRLF, blank line, a duplicate user)
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    name = upload_job_name(head, "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job", {"batchInferenceJobArn": _arn(name)}, _expected_home_request(name)
    )
    # When the submit handler gets its Object Created event
    result = invoke("submit", object_created(head, "input/home/users.jsonl"))
    # Then one job was created with the route's options, reading a canonical staged copy
    assert result == {"jobName": name, "status": "CREATE PENDING"}
    assert (
        cloud.read(f"staged/home/{name}/users.jsonl")
        == b'{"userId":"4638"}\n{"userId":"663"}\n{"userId":"3384"}\n'
    )
    job = cloud.job(name)
    assert job["status"]["S"] == "CREATE PENDING"
    assert job["inflight"]["S"] == "RUNNING"
    assert job["jobArn"]["S"] == _arn(name)
    assert job["validation"]["M"]["duplicates"]["N"] == "1"
    # And the duplicate is reported, the original is untouched, and the state change is published
    report = json.loads(cloud.read(f"reports/{name}/validation.json"))
    assert report["totals"] == {"lines": 4, "valid": 3, "invalid": 0, "duplicates": 1, "blank": 1}
    assert cloud.read("input/home/users.jsonl") == USERS
    [event] = cloud.published()
    assert event["detail-type"] == "Batch Job State Change"
    assert event["detail"]["status"] == "CREATE PENDING"
    assert event["detail"]["outputPath"] == f"s3://{BUCKET}/output/home/{name}/"


def test_duplicate_event_delivery_submits_one_job(cloud: Cloud, personalize, invoke) -> None:
    # Given an upload whose event is delivered twice (only ONE Personalize response is stubbed)
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    name = upload_job_name(head, "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job", {"batchInferenceJobArn": _arn(name)}, _expected_home_request(name)
    )
    event = object_created(head, "input/home/users.jsonl")
    # When both deliveries are handled
    first = invoke("submit", event)
    second = invoke("submit", event)
    # Then the second sees the recorded job: one job, one create call, one event
    assert first == second == {"jobName": name, "status": "CREATE PENDING"}
    assert len(cloud.jobs()) == 1
    assert len(cloud.published()) == 1


def test_reupload_of_the_same_key_is_a_new_job(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    for sequencer in ("0055AED6DCD90281E5", "0055AED6DCD90281F9"):
        name = upload_job_name(head, "input/home/users.jsonl", sequencer)
        stubber.add_response(
            "create_batch_inference_job", {"batchInferenceJobArn": _arn(name)}, _expected_home_request(name)
        )
        invoke("submit", object_created(head, "input/home/users.jsonl", sequencer=sequencer))
    assert len(cloud.jobs()) == 2


def test_invalid_file_is_rejected_with_a_line_numbered_report_and_nothing_submitted(
    cloud: Cloud, personalize, invoke
) -> None:
    # Given a file with bad lines 2 and 3 on a route that rejects (no Personalize call is stubbed)
    body = b'{"userId": "1"}\n{"userId": 2}\n{"user": "3"}\n'
    head = cloud.put("input/home/bad.jsonl", body)
    name = upload_job_name(head, "input/home/bad.jsonl", "0055AED6DCD90281E5")
    # When handled
    result = invoke("submit", object_created(head, "input/home/bad.jsonl"))
    # Then the job is REJECTED, the report lists line numbers, expected and found, and nothing is staged
    assert result == {"jobName": name, "status": "REJECTED"}
    report = json.loads(cloud.read(f"rejected/home/{name}/bad.jsonl.report.json"))
    assert report["accepted"] is False
    assert report["totals"]["invalid"] == 2
    assert [(p["line"], p["found"]) for p in report["problems"]] == [
        (2, "number 2"),
        (3, "unknown field 'user'"),
        (3, "no such field"),
    ]
    assert report["problems"][0]["expected"] == "userId: a non-empty string of at most 256 characters"
    assert cloud.keys("staged/") == []
    assert cloud.read("input/home/bad.jsonl") == body
    job = cloud.job(name)
    assert (job["status"]["S"], job["reportKey"]["S"]) == (
        "REJECTED",
        f"rejected/home/{name}/bad.jsonl.report.json",
    )
    assert "inflight" not in job
    [event] = cloud.published()
    assert (event["detail"]["status"], event["detail"]["failureReason"]) == (
        "REJECTED",
        "2 invalid lines of 3",
    )


def test_skip_route_submits_the_good_lines_and_reports_the_bad(cloud: Cloud, personalize, invoke) -> None:
    # Given the "related" route (onInvalidLines: skip) and a CSV upload with one bad row
    _, stubber = personalize
    body = b"itemId\n105\n\n106,extra\n441\n"
    head = cloud.put("input/related/items.csv", body)
    name = upload_job_name(head, "input/related/items.csv", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": _arn(name)},
        {
            "jobName": name,
            "solutionVersionArn": solution("RELATED_ITEMS_SOLUTION_VERSION_ARN"),
            "numResults": 10,
            "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/staged/related/{name}/items.jsonl"}},
            "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/output/related/{name}/"}},
            "roleArn": ROLE_ARN,
            "tags": [{"tagKey": "app", "tagValue": "batchrecs"}],
        },
    )
    # When handled
    result = invoke("submit", object_created(head, "input/related/items.csv"))
    # Then the job runs on the good lines and the skipped one is in the report with its line number
    assert result["status"] == "CREATE PENDING"
    staged = [orjson.loads(line) for line in cloud.read(f"staged/related/{name}/items.jsonl").splitlines()]
    assert staged == [{"itemId": "105"}, {"itemId": "441"}]
    report = json.loads(cloud.read(f"reports/{name}/validation.json"))
    assert report["problems"] == [{"line": 4, "expected": "1 comma-separated values", "found": "2 values"}]


def test_limit_exceeded_queues_the_job(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    name = upload_job_name(head, "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_client_error(
        "create_batch_inference_job",
        service_error_code="LimitExceededException",
        http_status_code=400,
        expected_params=_expected_home_request(name),
    )
    result = invoke("submit", object_created(head, "input/home/users.jsonl"))
    assert result == {"jobName": name, "status": "QUEUED"}
    job = cloud.job(name)
    assert (job["inflight"]["S"], "jobArn" in job) == ("QUEUED", False)
    assert json.loads(job["request"]["S"]) == _expected_home_request(name)
    assert cloud.published()[0]["detail"]["status"] == "QUEUED"


def test_job_that_already_exists_counts_as_submitted(cloud: Cloud, personalize, invoke) -> None:
    # Given an earlier delivery that created the job but died before recording it
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    name = upload_job_name(head, "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_client_error(
        "create_batch_inference_job",
        service_error_code="ResourceAlreadyExistsException",
        http_status_code=400,
    )
    # When the retry is handled, Then it is recorded as submitted with the job's ARN
    result = invoke("submit", object_created(head, "input/home/users.jsonl"))
    assert result["status"] == "CREATE PENDING"
    assert cloud.job(name)["jobArn"]["S"] == _arn(name)


def test_unknown_solution_version_rejects_the_job_with_the_reason(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    stubber.add_client_error(
        "create_batch_inference_job",
        service_error_code="ResourceNotFoundException",
        service_message="Could not find solution version",
        http_status_code=404,
    )
    result = invoke("submit", object_created(head, "input/home/users.jsonl"))
    assert result["status"] == "REJECTED"  # nothing to run until the route changes: no retry
    [event] = cloud.published()
    assert event["detail"]["failureReason"] == "ResourceNotFoundException: Could not find solution version"


def test_file_for_an_unknown_route_is_rejected_and_reported(cloud: Cloud, personalize, invoke) -> None:
    head = cloud.put("input/nope/users.jsonl", USERS)
    result = invoke("submit", object_created(head, "input/nope/users.jsonl"))
    assert result["status"] == "REJECTED"
    report = json.loads(cloud.read(f"rejected/nope/{result['jobName']}/users.jsonl.report.json"))
    assert "no route named 'nope'" in report["fileProblem"]["found"]


def test_folder_markers_are_ignored(cloud: Cloud, personalize: tuple[Any, Stubber], invoke) -> None:
    head = cloud.put("input/home/", b"")
    assert invoke("submit", object_created(head, "input/home/")) == {"ignored": "input/home/"}
    assert cloud.jobs() == []


def test_reuploads_to_an_unversioned_bucket_are_new_jobs_despite_version_id_null(
    cloud: Cloud, personalize, invoke
) -> None:
    # Given two writes of the same key to an unversioned bucket: S3 sends version-id "null" for both
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", USERS)
    names = set()
    for sequencer in ("617f08299329d189", "617f08299329d1a0"):
        event = object_created(head, "input/home/users.jsonl", sequencer=sequencer)
        event["detail"]["object"]["version-id"] = "null"
        stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": _arn("x")})
        # When each event is handled, Then each write is its own job
        names.add(invoke("submit", event)["jobName"])
    assert len(names) == 2


def test_two_quick_uploads_to_one_key_each_validate_their_own_version(
    cloud: Cloud, personalize, invoke
) -> None:
    # Given two writes of one key before either event is handled (the bucket is versioned)
    _, stubber = personalize
    first = cloud.put("input/home/users.jsonl", b'{"userId": "first"}\n')
    second = cloud.put("input/home/users.jsonl", b'{"userId": "second"}\n')
    assert first["VersionId"] != second["VersionId"]
    staged = []
    for head, sequencer in ((first, "0055AED6DCD90281E5"), (second, "0055AED6DCD90281F9")):
        stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": _arn("x")})
        # When each event is handled
        invoke("submit", object_created(head, "input/home/users.jsonl", sequencer=sequencer))
        name = upload_job_name(head, "input/home/users.jsonl", sequencer)
        staged.append(cloud.read(f"staged/home/{name}/users.jsonl"))
    # Then each job read the version its event names, not the newest
    assert staged == [b'{"userId":"first"}\n', b'{"userId":"second"}\n']


def test_a_schedule_tick_submits_the_standing_input_once_per_scheduled_time(
    cloud: Cloud, personalize, invoke, monkeypatch, tmp_path
) -> None:
    from tests.conftest import shipped_routes_with

    routes = shipped_routes_with(
        tmp_path, "home", schedule="rate(7 days)", standingInput="input/home/all-users.jsonl"
    )
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    _, stubber = personalize
    cloud.put("input/home/all-users.jsonl", b'{"userId": "1"}\n')
    tick = {"scheduledRun": {"route": "home", "bucket": BUCKET, "scheduledTime": "2026-12-07T05:00:00Z"}}
    stubber.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/x"},
    )
    first = invoke("submit", tick)
    again = invoke("submit", tick)  # delivered twice: no second CreateBatchInferenceJob (the stub has one)
    assert first == again and first["status"] == "CREATE PENDING"
    assert first["jobName"].startswith("home-all-users-20261207T0500-")
    stubber.assert_no_pending_responses()
    assert cloud.job(first["jobName"])["sourceKey"]["S"] == "input/home/all-users.jsonl"
