"""Export: an ACTIVE event -> planner -> chunk messages -> workers -> records in DynamoDB, errors reported.

Chunks are 512 bytes here (EXPORT_CHUNK_BYTES), so every multi-line file is split across many workers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tests.conftest import FIXTURES, SOLUTION_ARNS, shipped_routes_with
from tests.integration.conftest import Cloud, object_created, sample_event, sqs_event, upload_job_name

SEED_OUT = (FIXTURES / "seed002_user_personalization.out.jsonl").read_bytes()
SEED_BAD = (FIXTURES / "seed000_user_personalization.out.jsonl").read_bytes().splitlines()[0]
ERROR_LINE = b'{"input": {"userId": "999"}, "output": null, "error": "User not found in the training data"}'
LATER_663 = b'{"input": {"userId": "663"}, "output": {"recommendedItems": ["1", "2"], "scores": [0.9, 0.1]}, "error": null}'


def _active_job(
    cloud: Cloud, stubber: Any, invoke: Any, key: str = "input/home/users.jsonl"
) -> tuple[str, dict[str, Any]]:
    """A job of the home route, submitted, whose ACTIVE event the monitor published."""
    head = cloud.put(key, b'{"userId": "4638"}\n{"userId": "663"}\n{"userId": "3384"}\n')
    name = upload_job_name(head, key, "0055AED6DCD90281E5")
    arn = f"arn:aws:personalize:us-east-1:123456789012:batch-inference-job/{name}"
    stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": arn})
    invoke("submit", object_created(head, key))
    stubber.add_response("describe_batch_inference_job", {"batchInferenceJob": {"status": "ACTIVE"}})
    invoke("monitor", sample_event("scheduled_tick.json"))
    active = [e for e in cloud.published() if e["detail"]["status"] == "ACTIVE"]
    assert len(active) == 1
    cloud.seen.clear()
    event = sample_event("job_state_change_active.json")
    event["detail"] = active[0]["detail"]
    return name, event


def _drain(cloud: Cloud, invoke: Any, batch: int = 3) -> list[dict[str, Any]]:
    """Deliver every chunk message to the worker handler, in batches, as the event source would."""
    responses = []
    while messages := cloud.sqs.receive_message(QueueUrl=cloud.chunks_url, MaxNumberOfMessages=batch).get(
        "Messages"
    ):
        response = invoke("export_worker", sqs_event(messages))
        responses.append(response)
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                cloud.sqs.delete_message(QueueUrl=cloud.chunks_url, ReceiptHandle=message["ReceiptHandle"])
    return responses


def _active_event(name: str, route: str, kind: str) -> dict[str, Any]:
    """The ACTIVE state-change event of job ``name``, its output under the route's output prefix."""
    event = sample_event("job_state_change_active.json")
    event["detail"].update(
        jobName=name, route=route, kind=kind, outputPath=f"s3://batchrecs-data/output/{route}/{name}/"
    )
    return event


def _plain_job(cloud: Cloud, name: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    return {k: TypeDeserializer().deserialize(v) for k, v in cloud.job(name).items()}


def test_active_job_fans_out_and_becomes_records_exactly_as_specified(
    cloud: Cloud, personalize, invoke
) -> None:
    # Given a finished job whose .out holds the seed lines, a Personalize error line, an invalid-JSON
    # line from the older guide, and a later line for user 663
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    out = SEED_OUT + ERROR_LINE + b"\n" + SEED_BAD + b"\n" + LATER_663 + b"\n"
    key = f"output/home/{name}/users.jsonl.out"
    cloud.put(key, out)
    cloud.put(f"output/home/{name}/_SUCCESS", b"")  # not a .out file: not read
    # When the planner gets the ACTIVE event and the workers get its chunks
    planned = invoke("export_planner", event)
    assert planned["status"] == "EXPORTING"
    assert planned["chunks"] == -(-len(out) // 512)
    assert planned["chunks"] > 3
    _drain(cloud, invoke)
    # Then every usable line is one record, the later line for 663 wins, and counts add up
    job = _plain_job(cloud, name)
    assert job["status"] == "EXPORTED"
    assert job["export"] == {
        "lines": 6,
        "linesWritten": 4,
        "linesFailed": 2,
        "recordsWritten": 4,
        "chunks": planned["chunks"],
        "errorsReport": f"s3://batchrecs-data/reports/{name}/errors/",
        "throttles": 0,
        "linesSuperseded": 0,
        "recordsRemoved": 0,
        "itemsBelowThemeScore": 0,
    }
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
        "solutionVersionArn": {"S": SOLUTION_ARNS["USER_PERSONALIZATION_SOLUTION_VERSION_ARN"]},  # the model
    }
    assert records[("663", "home")]["items"] == {"L": [{"S": "1"}, {"S": "2"}]}
    # And the unusable lines are reported with file, byte offset and reason
    errors = sorted(
        (
            orjson.loads(line)
            for k in cloud.keys(f"reports/{name}/errors/")
            for line in cloud.read(k).splitlines()
        ),
        key=lambda e: e["offset"],
    )
    assert errors == [
        {
            "file": key,
            "offset": len(SEED_OUT),
            "reason": "Personalize error: User not found in the training data",
        },
        {"file": key, "offset": len(SEED_OUT) + len(ERROR_LINE) + 1, "reason": "not valid JSON"},
    ]
    # And exactly one completion event was published
    [completed] = cloud.published()
    assert completed["detail-type"] == "Batch Export Completed"
    assert (
        completed["detail"]["status"],
        completed["detail"]["lines"],
        completed["detail"]["linesFailed"],
    ) == (
        "EXPORTED",
        6,
        2,
    )


def test_redelivered_events_and_chunks_do_not_double_count(cloud: Cloud, personalize, invoke) -> None:
    # Given an export whose ACTIVE event arrives twice (the FIFO queue drops sends repeated within five
    # minutes; later repeats reach the workers)
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
    first = invoke("export_planner", event)
    second = invoke("export_planner", event)
    assert first["chunks"] == second["chunks"]
    # When the workers get every message
    _drain(cloud, invoke)
    # Then each chunk was counted once, and the completion event was published once
    job = _plain_job(cloud, name)
    assert (job["status"], job["export"]["lines"], job["export"]["recordsWritten"]) == ("EXPORTED", 3, 3)
    assert len(job["chunksDone"]) == first["chunks"]
    assert len(cloud.records()) == 3
    assert len(cloud.published()) == 1
    # And an ACTIVE event after the export is a no-op
    assert invoke("export_planner", event)["status"] == "EXPORTED"


def test_the_worker_publishes_its_chunks_and_records_as_metrics(
    cloud: Cloud, personalize, invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue #17, part 2: every function emits EMF metrics, the worker included (it emitted none, and
    # Powertools warned "No application metrics to publish" on each batch)
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
    chunks = invoke("export_planner", event)["chunks"]
    capsys.readouterr()
    _drain(cloud, invoke)
    emitted: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if '"CloudWatchMetrics"' not in line:
            continue
        document = json.loads(line)
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            value = document[metric["Name"]]
            emitted[metric["Name"]] = emitted.get(metric["Name"], 0) + sum(
                value if isinstance(value, list) else [value]
            )
    assert emitted["ChunksReceived"] == emitted["ChunksExported"] == chunks
    assert (emitted["RecordsWritten"], emitted["LinesFailed"]) == (3, 0)
    assert emitted["WriteThrottles"] == 0


def test_export_started_before_the_monitor_saved_active_still_runs(cloud: Cloud, personalize, invoke) -> None:
    # Given the monitor published ACTIVE but the job record still says CREATE PENDING (race)
    _, stubber = personalize
    head = cloud.put("input/home/users.jsonl", b'{"userId": "4638"}\n')
    name = upload_job_name(head, "input/home/users.jsonl", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/x"},
    )
    invoke("submit", object_created(head, "input/home/users.jsonl"))
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT.splitlines()[0] + b"\n")
    event = sample_event("job_state_change_active.json")
    event["detail"].update(jobName=name, outputPath=f"s3://batchrecs-data/output/home/{name}/")
    # When the export runs, Then it exports
    invoke("export_planner", event)
    _drain(cloud, invoke)
    assert _plain_job(cloud, name)["status"] == "EXPORTED"


def test_missing_output_fails_the_export_visibly_once(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    # The handler does not raise: a raise would be retried twice, each retry failing and alerting again
    assert invoke("export_planner", event)["status"] == "EXPORT_FAILED"
    job = _plain_job(cloud, name)
    assert job["status"] == "EXPORT_FAILED"
    assert "no .out files" in job["failureReason"]
    [completed] = cloud.published()
    assert completed["detail"]["status"] == "EXPORT_FAILED"
    # And a retry after the output appears succeeds
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
    invoke("export_planner", event)
    _drain(cloud, invoke)
    assert _plain_job(cloud, name)["status"] == "EXPORTED"


def test_a_chunk_of_a_file_that_changed_fails_alone_and_is_retried(
    cloud: Cloud, personalize, invoke, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a planned export whose output file is then replaced (its ETag changes)
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    key = f"output/home/{name}/users.jsonl.out"
    cloud.put(key, SEED_OUT)
    invoke("export_planner", event)
    cloud.put(key, SEED_OUT + b"\n")
    # When a worker gets a batch of its chunks, Then the invocation fails (every record failed), so the
    # messages stay on the queue for a retry, and nothing was counted
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    messages = cloud.sqs.receive_message(QueueUrl=cloud.chunks_url, MaxNumberOfMessages=2)["Messages"]
    with pytest.raises(BatchProcessingError, match="changed since the export was planned"):
        invoke("export_worker", sqs_event(messages))
    job = _plain_job(cloud, name)
    assert (job["status"], job.get("chunksDone")) == ("EXPORTING", None)
    # And the job shows why at once, and each message was put back for a minute (the worker's role may
    # change its visibility: a denied call would be logged as "could not schedule the chunk's retry")
    assert "(receive 1 of 3)" in job["chunkRetry"] and "tried again in 60 s" in job["chunkRetry"]
    assert "could not schedule" not in capsys.readouterr().out


def test_related_items_records_are_keyed_by_item(cloud: Cloud, personalize, invoke) -> None:
    _, stubber = personalize
    head = cloud.put("input/related/items.jsonl", b'{"itemId": "105"}\n')
    name = upload_job_name(head, "input/related/items.jsonl", "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_inference_job",
        {"batchInferenceJobArn": "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/r"},
    )
    invoke("submit", object_created(head, "input/related/items.jsonl"))
    cloud.put(
        f"output/related/{name}/items.jsonl.out", (FIXTURES / "seed002_related_items.out.jsonl").read_bytes()
    )
    invoke("export_planner", _active_event(name, "related", "related-items"))
    _drain(cloud, invoke)
    records = cloud.records()
    assert set(records) == {("105", "related"), ("106", "related"), ("441", "related")}
    assert "scores" not in records[("105", "related")]
    assert _plain_job(cloud, name)["export"]["lines"] == 3


def test_a_chunk_that_uses_up_its_retries_fails_the_job_until_redriven(
    cloud: Cloud, personalize, invoke
) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from batchrecs.aws.sqs import redrive

    # Given a planned export whose output file is then replaced, so one chunk keeps failing
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    key = f"output/home/{name}/users.jsonl.out"
    cloud.put(key, SEED_OUT)
    invoke("export_planner", event)
    cloud.put(key, b"replaced\n")
    [message] = cloud.sqs.receive_message(QueueUrl=cloud.chunks_url, MaxNumberOfMessages=1)["Messages"]
    chunk_id = orjson.loads(message["Body"])["chunkId"]
    # When it fails on its last allowed receive (CHUNK_MAX_RECEIVES = 3)
    with pytest.raises(BatchProcessingError):
        invoke("export_worker", sqs_event([message], receive_count=3))
    # Then the job shows which chunk failed and why, and the failure is published
    job = _plain_job(cloud, name)
    assert job["status"] == "EXPORT_FAILED"
    assert job["chunksFailed"] == {chunk_id}
    assert job["failureReason"].startswith(f"chunk {chunk_id}: ObjectChangedError")
    [failed] = cloud.published()
    assert (failed["detail"]["status"], failed["detail"]["failureReason"]) == (
        "EXPORT_FAILED",
        job["failureReason"],
    )
    # When the cause is fixed and the dead-lettered message is re-driven with the rest
    cloud.put(key, SEED_OUT)  # same bytes, same ETag as planned
    dlq = cloud.sqs.create_queue(QueueName="chunks-dlq")["QueueUrl"]
    cloud.sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"])
    cloud.sqs.delete_message(QueueUrl=cloud.chunks_url, ReceiptHandle=message["ReceiptHandle"])
    assert redrive(dlq, cloud.chunks_url, client=cloud.sqs) == 1
    _drain(cloud, invoke)
    # Then every chunk is counted once and the job ends EXPORTED
    job = _plain_job(cloud, name)
    assert (job["status"], job["export"]["recordsWritten"], job.get("chunksFailed")) == ("EXPORTED", 3, None)


def test_an_active_event_redelivered_mid_export_only_resends(cloud: Cloud, personalize, invoke) -> None:
    # (Sequential: the concurrent case is covered by construction, since a planned job is only ever
    # updated with ADD/SET expressions, never rewritten whole by the planner.)
    # Given an export where one chunk has already been counted
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
    planned = invoke("export_planner", event)
    first = cloud.sqs.receive_message(QueueUrl=cloud.chunks_url, MaxNumberOfMessages=1)["Messages"]
    invoke("export_worker", sqs_event(first))
    cloud.sqs.delete_message(QueueUrl=cloud.chunks_url, ReceiptHandle=first[0]["ReceiptHandle"])
    assert len(_plain_job(cloud, name)["chunksDone"]) == 1
    # When the ACTIVE event arrives again, Then the counted chunk is kept (the planner only resends)
    again = invoke("export_planner", event)
    assert (again["status"], again["chunks"]) == ("EXPORTING", planned["chunks"])
    assert len(_plain_job(cloud, name)["chunksDone"]) == 1
    # And the export ends with every line counted once
    _drain(cloud, invoke)
    job = _plain_job(cloud, name)
    assert (job["status"], job["export"]["lines"], job["export"]["recordsWritten"]) == ("EXPORTED", 3, 3)
    assert len(cloud.published()) == 1


def _segment_job(cloud: Cloud, stubber: Any, invoke: Any, route: str, body: bytes) -> str:
    """A submitted segment job of ``route``; returns its name."""
    key = f"input/{route}/segments.jsonl"
    head = cloud.put(key, body)
    name = upload_job_name(head, key, "0055AED6DCD90281E5")
    stubber.add_response(
        "create_batch_segment_job",
        {"batchSegmentJobArn": f"arn:aws:personalize:us-east-1:123456789012:batch-segment-job/{name}"},
    )
    invoke("submit", object_created(head, key))
    return name


def _export_active(cloud: Cloud, invoke: Any, name: str, route: str, kind: str, out: bytes) -> None:
    cloud.put(f"output/{route}/{name}/segments.jsonl.out", out)
    invoke("export_planner", _active_event(name, route, kind))
    _drain(cloud, invoke)


def test_item_affinity_segments_become_one_record_per_user_and_segment(
    cloud: Cloud, personalize, invoke
) -> None:
    # Given a segment job whose output uses both spellings and has one long line (3,000 users here:
    # moto's DynamoDB stores about 100 items/s on these machines; 100k-user lines are unit-tested)
    _, stubber = personalize
    name = _segment_job(cloud, stubber, invoke, "segments", b'{"itemId": "105"}\n{"itemId": "big"}\n')
    big = [f"u{n}" for n in range(3_000)]
    out = (FIXTURES / "seed002_item_affinity.out.jsonl").read_bytes()  # recommendedUsers (the docs)
    out += orjson.dumps({"input": {"itemId": "big"}, "output": {"usersList": big}, "error": None}) + b"\n"
    # When its export runs (512-byte chunks: the long line spans dozens of them, owned by one)
    _export_active(cloud, invoke, name, "segments", "item-affinity", out)
    # Then every (user, segment) is a record with its rank, and a user's segments are one Query away
    job = _plain_job(cloud, name)
    assert job["status"] == "EXPORTED"
    assert (job["export"]["lines"], job["export"]["linesWritten"], job["export"]["recordsWritten"]) == (
        4,
        4,
        9 + 3_000,
    )
    query = cloud.ddb.query(
        TableName="batchrecs-recommendations",
        KeyConditionExpression="pk = :u AND begins_with(sk, :route)",
        ExpressionAttributeValues={":u": {"S": "107"}, ":route": {"S": "segments#"}},
    )["Items"]
    assert sorted((item["sk"]["S"], item["rank"]["N"]) for item in query) == [
        ("segments#105", "2"),
        ("segments#106", "2"),
    ]
    last = cloud.ddb.get_item(
        TableName="batchrecs-recommendations", Key={"pk": {"S": "u2999"}, "sk": {"S": "segments#big"}}
    )["Item"]
    assert (last["segment"]["S"], last["rank"]["N"], last["jobName"]["S"]) == ("big", "3000", name)


def test_item_attribute_segments_are_keyed_by_a_hash_of_the_expression(
    cloud: Cloud, personalize, invoke
) -> None:
    from batchrecs.sinks.dynamodb.records import segment_key

    _, stubber = personalize
    expression = 'ITEMS.genres = "Comedy" AND ITEMS.genres = "Action"'
    name = _segment_job(
        cloud, stubber, invoke, "segment-attributes", orjson.dumps({"itemAttributes": expression}) + b"\n"
    )
    out = (FIXTURES / "seed002_item_attribute_affinity.out.jsonl").read_bytes().splitlines()[0] + b"\n"
    _export_active(cloud, invoke, name, "segment-attributes", "item-attribute-affinity", out)
    records = cloud.records()
    sk = "segment-attributes#" + segment_key(expression, True)
    assert set(records) == {("25", sk), ("78", sk), ("108", sk)}
    assert records[("78", sk)]["segment"]["S"] == expression and records[("78", sk)]["rank"]["N"] == "2"


# Routes with maxExportWorkers: the route's chunks share N groups of the FIFO chunks queue.

MANY_USERS = b"".join(
    orjson.dumps(
        {"input": {"userId": str(user)}, "output": {"recommendedItems": ["1", "2"], "scores": [0.5, 0.25]}}
    )
    + b"\n"
    for user in range(40)
)


@pytest.fixture
def home_limited_to_two_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The shipped routes file, with ``maxExportWorkers: 2`` on the home route."""
    monkeypatch.setenv("ROUTES_FILE", str(shipped_routes_with(tmp_path, "home", maxExportWorkers=2)))


def _queued(cloud: Cloud) -> int:
    """Messages on the chunks queue, visible or being processed."""
    attributes = cloud.sqs.get_queue_attributes(
        QueueUrl=cloud.chunks_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def _take_all(cloud: Cloud) -> list[dict[str, Any]]:
    """What idle workers would get now: one receive each until the queue gives nothing more."""
    taken = []
    while messages := cloud.sqs.receive_message(
        QueueUrl=cloud.chunks_url, MaxNumberOfMessages=1, AttributeNames=["MessageGroupId"]
    ).get("Messages"):
        taken += messages
    return taken


def test_two_jobs_of_a_route_limited_to_two_workers_never_run_more_than_two_chunks_at_once(
    cloud: Cloud, personalize, invoke, home_limited_to_two_workers
) -> None:
    # Given two jobs of a route limited to 2 workers, both planned, their outputs in 512-byte chunks
    _, stubber = personalize
    jobs = [_active_job(cloud, stubber, invoke, f"input/home/users-{n}.jsonl") for n in (1, 2)]
    chunks = 0
    for name, event in jobs:
        cloud.put(f"output/home/{name}/users.jsonl.out", MANY_USERS)
        chunks += invoke("export_planner", event)["chunks"]
    assert chunks > 12 and _queued(cloud) == chunks  # every chunk is queued at once
    # When as many workers as the queue allows take chunks, round after round
    delivered, most = 0, 0
    while taken := _take_all(cloud):
        # Then the queue hands out at most one chunk per group: 2 for the route, across both jobs
        most = max(most, len(taken))
        assert len({m["Attributes"]["MessageGroupId"] for m in taken}) == len(taken) <= 2
        response = invoke("export_worker", sqs_event(taken))
        assert response["batchItemFailures"] == []
        for message in taken:
            cloud.sqs.delete_message(QueueUrl=cloud.chunks_url, ReceiptHandle=message["ReceiptHandle"])
        delivered += len(taken)
    # And every chunk was delivered once and both jobs exported every line
    assert (most, delivered) == (2, chunks)
    for name, _ in jobs:
        job = _plain_job(cloud, name)
        assert (job["status"], job["export"]["lines"], job["export"]["recordsWritten"]) == (
            "EXPORTED",
            40,
            40,
        )
    assert len(cloud.published()) == 2


def test_a_given_up_chunk_frees_its_group_and_a_redrive_puts_it_back_in_it(
    cloud: Cloud, personalize, invoke, home_limited_to_two_workers
) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from batchrecs.aws.sqs import redrive

    # Given a limited route's export whose output file is replaced after planning, so chunks fail
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    key = f"output/home/{name}/users.jsonl.out"
    cloud.put(key, MANY_USERS)
    planned = invoke("export_planner", event)
    cloud.put(key, b"replaced\n")
    [message] = cloud.sqs.receive_message(
        QueueUrl=cloud.chunks_url, MaxNumberOfMessages=1, AttributeNames=["MessageGroupId"]
    )["Messages"]
    group = message["Attributes"]["MessageGroupId"]
    # When one fails on its last allowed receive and is dead-lettered (as SQS does after maxReceiveCount)
    with pytest.raises(BatchProcessingError):
        invoke("export_worker", sqs_event([message], receive_count=3))
    dlq = cloud.sqs.create_queue(QueueName="chunks-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    cloud.sqs.send_message(
        QueueUrl=dlq, MessageBody=message["Body"], MessageGroupId=group, MessageDeduplicationId="dead"
    )
    cloud.sqs.delete_message(QueueUrl=cloud.chunks_url, ReceiptHandle=message["ReceiptHandle"])
    # Then the job is EXPORT_FAILED naming it, and once the file is back the other chunks all run
    chunk_id = orjson.loads(message["Body"])["chunkId"]
    assert _plain_job(cloud, name)["chunksFailed"] == {chunk_id}
    cloud.put(key, MANY_USERS)
    _drain(cloud, invoke)
    assert len(_plain_job(cloud, name)["chunksDone"]) == planned["chunks"] - 1
    # When it is re-driven, Then it goes back into its group and the job ends EXPORTED, every line once
    assert redrive(dlq, cloud.chunks_url, client=cloud.sqs) == 1
    [again] = _take_all(cloud)
    assert again["Attributes"]["MessageGroupId"] == group
    invoke("export_worker", sqs_event([again]))
    job = _plain_job(cloud, name)
    assert (job["status"], len(job["chunksDone"]), job["export"]["recordsWritten"]) == (
        "EXPORTED",
        planned["chunks"],
        40,
    )


def test_an_active_event_repeated_within_five_minutes_queues_nothing_more(
    cloud: Cloud, personalize, invoke, home_limited_to_two_workers
) -> None:
    # Given a planned export of a limited route
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    cloud.put(f"output/home/{name}/users.jsonl.out", MANY_USERS)
    planned = invoke("export_planner", event)
    # When the ACTIVE event arrives again, Then the FIFO queue drops the repeated chunk messages
    assert invoke("export_planner", event)["chunks"] == planned["chunks"] == _queued(cloud)
    # And the export ends with every line counted once
    _drain(cloud, invoke)
    job = _plain_job(cloud, name)
    assert (job["status"], job["export"]["recordsWritten"]) == ("EXPORTED", 40)


def test_throttled_writes_are_retried_and_counted_on_the_job_and_in_the_event(
    cloud: Cloud, personalize, invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from batchrecs.aws.dynamodb_batches import SignedBatchWriter
    from batchrecs.errors import DynamoDBError

    # Given a table that throttles the first three BatchWriteItem calls
    real_write = SignedBatchWriter.write
    throttled = []
    lock = threading.Lock()

    def throttling_write(writer: SignedBatchWriter, body: bytes) -> Any:
        with lock:
            if len(throttled) < 3:
                throttled.append(body)
                raise DynamoDBError("ProvisionedThroughputExceededException", "slow down", retryable=True)
        return real_write(writer, body)

    monkeypatch.setattr(SignedBatchWriter, "write", throttling_write)
    _, stubber = personalize
    name, event = _active_job(cloud, stubber, invoke)
    cloud.put(f"output/home/{name}/users.jsonl.out", MANY_USERS)
    # When the export runs
    invoke("export_planner", event)
    _drain(cloud, invoke)
    # Then every record is stored, and the throttles are added up on the job and in the event
    assert len(throttled) == 3
    assert len(cloud.records()) == 40
    job = _plain_job(cloud, name)
    assert (job["status"], job["export"]["recordsWritten"], job["export"]["throttles"]) == ("EXPORTED", 40, 3)
    [completed] = cloud.published()
    assert completed["detail"]["throttles"] == 3


def test_a_failed_chunk_in_a_batch_holds_back_only_its_own_group(cloud: Cloud, personalize, invoke) -> None:
    # Given two planned jobs, the first one's output replaced after planning (its chunks fail)
    _, stubber = personalize
    jobs = [_active_job(cloud, stubber, invoke, f"input/home/users-{n}.jsonl") for n in (1, 2)]
    for name, event in jobs:
        cloud.put(f"output/home/{name}/users.jsonl.out", SEED_OUT)
        invoke("export_planner", event)
    cloud.put(f"output/home/{jobs[0][0]}/users.jsonl.out", b"replaced\n")
    messages = cloud.sqs.receive_message(
        QueueUrl=cloud.chunks_url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId"]
    )["Messages"]
    failing = next(m for m in messages if orjson.loads(m["Body"])["jobName"] == jobs[0][0])
    passing = next(m for m in messages if orjson.loads(m["Body"])["jobName"] == jobs[1][0])
    # When a worker gets a batch with a chunk of each, the failing one first
    response = invoke("export_worker", sqs_event([failing, passing]))
    # Then only the failing chunk is reported (its group waits), and the other one was exported
    assert response["batchItemFailures"] == [{"itemIdentifier": failing["MessageId"]}]
    assert len(_plain_job(cloud, jobs[1][0])["chunksDone"]) == 1


def test_the_jobs_table_finds_a_newer_upload_of_a_key_that_started_exporting(cloud: Cloud) -> None:
    from batchrecs.aws.jobs_table import DynamoDBJobStore
    from batchrecs.jobs.model import Job

    from tests.integration.conftest import JOBS_TABLE

    def job(name: str, created: str, key: str = "input/home/all-users.jsonl", **fields: Any) -> Job:
        return Job(
            jobName=name, route="home", status="EXPORTING", sourceBucket="b", sourceKey=key,
            sourceIdentity=name, createdAt=created, updatedAt=created, **fields,
        )  # fmt: skip

    jobs = DynamoDBJobStore(JOBS_TABLE)
    monday, tuesday = job("home-mon", "2026-11-23T00:00:00Z"), job("home-tue", "2026-11-24T00:00:00Z")
    other = job("home-eu", "2026-11-25T00:00:00Z", key="input/home/eu.jsonl", chunksTotal=3)
    for stored in (monday, tuesday, other):
        jobs.claim(stored)
    assert jobs.newer_upload_exporting(monday) is None  # Tuesday's is not planned yet: no chunks
    jobs.set_chunks_total("home-tue", 4)
    assert jobs.newer_upload_exporting(monday) == "home-tue"
    assert jobs.newer_upload_exporting(tuesday) is None  # nothing newer than itself
    assert jobs.newer_upload_exporting(other) is None  # another file of the route
    # The parts of one upload run in parts (issue #16) are not newer uploads of each other, though they
    # share its key and time; a later upload of the key is newer than each of them
    upload = job("home-big", "2026-11-26T00:00:00Z", key="input/home/big.jsonl")
    first, second = (
        job(f"home-big-p{n}", upload.createdAt, key=upload.sourceKey, partOf="home-big", chunksTotal=2)
        for n in (1, 2)
    )
    for stored in (upload, first, second):
        jobs.claim(stored)
    assert jobs.newer_upload_exporting(first) is None and jobs.newer_upload_exporting(second) is None
    later = job("home-big-2", "2026-11-27T00:00:00Z", key=upload.sourceKey, chunksTotal=1)
    jobs.claim(later)
    assert jobs.newer_upload_exporting(first) == jobs.newer_upload_exporting(second) == "home-big-2"
    # and the previous export of a route is an upload's own job, never one of its parts
    for stored in (upload, first, second):
        jobs.save(stored.model_copy(update={"status": "EXPORTED"}), expected_status=stored.status)
    assert (jobs.latest_export_before(later) or upload).jobName == "home-big"


@pytest.fixture
def home_replaces_previous(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The shipped routes file, the home route with ``replacePrevious: true`` (after ``cloud``)."""
    path = shipped_routes_with(tmp_path, "home", destination={"type": "dynamodb", "replacePrevious": True})
    monkeypatch.setenv("ROUTES_FILE", str(path))


def _out_line(user: str) -> bytes:
    return (
        b'{"input": {"userId": "%s"}, "output": {"recommendedItems": ["1"], "scores": [0.5]}, "error": null}'
        % (user.encode())
    )


def test_an_export_that_replaces_the_previous_one_deletes_the_records_of_users_it_no_longer_has(
    cloud: Cloud, home_replaces_previous: None, personalize, invoke
) -> None:
    _, stubber = personalize
    # Given a first export of the home route: users 4638, 663 and 3384
    first, event = _active_job(cloud, stubber, invoke, key="input/home/week-1.jsonl")
    cloud.put(
        f"output/home/{first}/week-1.jsonl.out", b"\n".join(_out_line(u) for u in ("4638", "663", "3384"))
    )
    invoke("export_planner", event)
    _drain(cloud, invoke)
    assert {pk for pk, _ in cloud.records()} == {"4638", "663", "3384"}
    # When the next upload of the route has 663 and a new user 7 (another file name, one day later)
    key = "input/home/week-2.jsonl"
    head = cloud.put(key, b'{"userId": "663"}\n{"userId": "7"}\n')
    second = upload_job_name(head, key, "0055AED6DCD90281E5")
    arn = f"arn:aws:personalize:us-east-1:123456789012:batch-inference-job/{second}"
    stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": arn})
    invoke("submit", object_created(head, key))
    cloud.put(f"output/home/{second}/week-2.jsonl.out", _out_line("663") + b"\n" + _out_line("7"))
    event = _active_event(second, "home", "user-personalization")
    invoke("export_planner", event)
    invoke("export_planner", event)  # redelivered: the removal file and its chunks stay the same
    _drain(cloud, invoke)
    # Then only the new export's users have records: 4638 and 3384 were deleted, 663 rewritten by it
    records = cloud.records()
    assert set(records) == {("663", "home"), ("7", "home")}
    assert {records[key]["jobName"]["S"] for key in records} == {second}
    removed = cloud.s3.get_object(Bucket="batchrecs-data", Key=f"exports/{second}/removed.jsonl")[
        "Body"
    ].read()
    assert sorted(removed.split()) == [b'"3384"', b'"4638"']
    job = _plain_job(cloud, second)
    assert (job["status"], job["export"]["recordsRemoved"], job["export"]["lines"]) == ("EXPORTED", 2, 2)
    [completed] = [
        e["detail"]
        for e in cloud.published()
        if e["detail-type"] == "Batch Export Completed" and e["detail"]["jobName"] == second
    ]
    assert (completed["recordsRemoved"], completed["recordsWritten"]) == (2, 2)
