"""Export handler: an ACTIVE event -> the job's .out files -> records in DynamoDB, errors reported."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from batchrecs.jobs.naming import job_name

from tests.conftest import FIXTURES
from tests.integration.conftest import Cloud, object_created, sample_event

SEED_OUT = (FIXTURES / "seed002_user_personalization.out.jsonl").read_bytes()
SEED_BAD = (FIXTURES / "seed000_user_personalization.out.jsonl").read_bytes().splitlines()[0]
ERROR_LINE = b'{"input": {"userId": "999"}, "output": null, "error": "User not found in the training data"}'
LATER_663 = b'{"input": {"userId": "663"}, "output": {"recommendedItems": ["1", "2"], "scores": [0.9, 0.1]}, "error": null}'
EVENT_TIME = datetime(2026, 11, 23, 6, 0, 0, tzinfo=UTC)


def _active_job(cloud: Cloud, stubber: Any, invoke: Any) -> tuple[str, dict[str, Any]]:
    """A job of the home route, submitted, whose ACTIVE event the monitor published."""
    head = cloud.put("input/home/users.jsonl", b'{"userId": "4638"}\n{"userId": "663"}\n{"userId": "3384"}\n')
    name = job_name("home", "input/home/users.jsonl", "0055AED6DCD90281E5")
    arn = f"arn:aws:personalize:us-east-1:123456789012:batch-inference-job/{name}"
    stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": arn})
    invoke("submit", object_created(head, "input/home/users.jsonl"))
    stubber.add_response("describe_batch_inference_job", {"batchInferenceJob": {"status": "ACTIVE"}})
    invoke("monitor", sample_event("scheduled_tick.json"))
    active = [e for e in cloud.published() if e["detail"]["status"] == "ACTIVE"]
    assert len(active) == 1
    cloud.seen.clear()
    event = sample_event("job_state_change_active.json")
    event["detail"] = active[0]["detail"]
    return name, event


def test_active_job_becomes_records_exactly_as_specified(cloud: Cloud, personalize, invoke) -> None:
    # Given a finished job whose .out holds the seed lines, a Personalize error line, an invalid-JSON
    # line from the older guide, and a later line for user 663
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    out = SEED_OUT + ERROR_LINE + b"\n" + SEED_BAD + b"\n" + LATER_663 + b"\n"
    cloud.put(f"output/home/{name}/users.jsonl.out", out)
    cloud.put(f"output/home/{name}/_SUCCESS", b"")  # not a .out file: not read
    # When the export handler gets the ACTIVE event
    result = invoke("export", event)
    # Then every usable line is one record, the later line for 663 wins, and counts add up
    assert result["status"] == "EXPORTED"
    assert (result["lines"], result["recordsWritten"], result["linesFailed"]) == (6, 4, 2)
    records = cloud.records()
    assert set(records) == {("4638", "home"), ("663", "home"), ("3384", "home")}
    first = orjson.loads(SEED_OUT.splitlines()[0])
    expires = int(datetime(2026, 12, 23, 6, 0, tzinfo=UTC).timestamp())
    assert records[("4638", "home")] == {
        "pk": {"S": "4638"},
        "sk": {"S": "home"},
        "items": {"L": [{"S": item} for item in first["output"]["recommendedItems"]]},
        "scores": {"L": [{"N": repr(score)} for score in first["output"]["scores"]]},
        "route": {"S": "home"},
        "jobName": {"S": name},
        "generatedAt": {"S": "2026-11-23T06:00:00Z"},
        "expiresAt": {"N": str(expires)},
    }
    assert records[("663", "home")]["items"] == {"L": [{"S": "1"}, {"S": "2"}]}
    # And the unusable lines are reported with file, line number and reason
    errors = [orjson.loads(line) for line in cloud.read(f"reports/{name}/errors.jsonl").splitlines()]
    assert errors == [
        {
            "file": f"output/home/{name}/users.jsonl.out",
            "line": 4,
            "reason": "Personalize error: User not found in the training data",
        },
        {"file": f"output/home/{name}/users.jsonl.out", "line": 5, "reason": "not valid JSON"},
    ]
    # And the job holds the counts, and one completion event was published
    job = cloud.job(name)
    assert job["status"]["S"] == "EXPORTED"
    assert job["export"]["M"]["recordsWritten"]["N"] == "4"
    [completed] = cloud.published()
    assert completed["detail-type"] == "Batch Export Completed"
    assert completed["detail"]["status"] == "EXPORTED"
    assert (completed["detail"]["lines"], completed["detail"]["linesFailed"]) == (6, 2)
    assert completed["detail"]["errorsReport"] == f"s3://batchrecs-data/reports/{name}/errors.jsonl"


def test_second_delivery_of_the_active_event_does_not_double_count(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
    first = invoke("export", event)
    second = invoke("export", event)
    assert first == second
    assert first["recordsWritten"] == 3
    assert len(cloud.records()) == 3
    assert len(cloud.published()) == 1


def test_export_started_before_the_monitor_saved_active_still_runs(cloud: Cloud, personalize, invoke) -> None:
    # Given the monitor published ACTIVE but the job record still says CREATE PENDING (race)
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", b'{"userId": "4638"}\n')
    name = job_name("home", "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/x"},
    )
    invoke("submit", object_created(head, "input/home/users.jsonl"))
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT.splitlines()[0] + b"\n")
    event = sample_event("job_state_change_active.json")
    event["detail"].update(jobName=name, outputPath=f"s3://batchrecs-data/output/home/{name}/")
    # When the export runs, Then it exports
    assert invoke("export", event)["status"] == "EXPORTED"


def test_missing_output_fails_the_export_visibly(cloud: Cloud, personalize, invoke) -> None:
    import pytest
    from batchrecs.errors import ExportError

    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    with pytest.raises(ExportError, match="no .out files"):
        invoke("export", event)
    job = cloud.job(name)
    assert job["status"]["S"] == "EXPORT_FAILED"
    assert "no .out files" in job["failureReason"]["S"]
    [completed] = cloud.published()
    assert completed["detail"]["status"] == "EXPORT_FAILED"
    # And a retry after the output appears succeeds
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
    assert invoke("export", event)["status"] == "EXPORTED"


def test_related_items_records_are_keyed_by_item(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    head = cloud.put("input/related/items.jsonl", b'{"itemId": "105"}\n')
    name = job_name("related", "input/related/items.jsonl", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/r"},
    )
    invoke("submit", object_created(head, "input/related/items.jsonl"))
    cloud.put(
        f"output/related/{name}/items.jsonl.out", (FIXTURES / "seed002_related_items.out.jsonl").read_bytes()
    )
    event = sample_event("job_state_change_active.json")
    event["detail"].update(
        jobName=name,
        route="related",
        kind="related-items",
        outputPath=f"s3://batchrecs-data/output/related/{name}/",
    )
    invoke("export", event)
    records = cloud.records()
    assert set(records) == {("105", "related"), ("106", "related"), ("441", "related")}
    assert "scores" not in records[("105", "related")]
