"""``batchrecs local up`` driven by another program, and ``batchrecs demo`` (what ``make demo`` runs)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import boto3
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import SAMPLES, batchrecs

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(predicate: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def test_local_up_runs_the_live_pipeline_until_stopped() -> None:
    # Given the local cloud started in the foreground
    process = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "batchrecs_local", "local", "up", "--json", "--port", str(_free_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert {"endpoint", "region", "bucket", "recommendations_table", "jobs_table", "event_bus"} <= set(
            info
        )
        session = boto3.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=info["region"]
        )
        s3 = session.client("s3", endpoint_url=info["endpoint"])
        ddb = session.client("dynamodb", endpoint_url=info["endpoint"])
        events = session.client("events", endpoint_url=info["endpoint"])

        def jobs() -> list[dict[str, Any]]:
            return ddb.scan(TableName=info["jobs_table"])["Items"]

        # When a user drops a file into the bucket with plain boto3
        s3.put_object(
            Bucket=info["bucket"],
            Key="input/home/users.jsonl",
            Body=(SAMPLES / "home" / "users.jsonl").read_bytes(),
        )
        # Then it flows to records in the recommendations table
        _wait(lambda: [j for j in jobs() if j["status"]["S"] == "EXPORTED"])
        records = ddb.scan(TableName=info["recommendations_table"])["Items"]
        assert len(records) == 42
        # When S3's event for that upload is delivered again (at-least-once), Then no second job starts
        [job] = jobs()
        event = {
            "version": "0",
            "bucket": {"name": info["bucket"]},
            "object": {"key": "input/home/users.jsonl", "size": 1, "sequencer": job["sourceIdentity"]["S"]},
            "request-id": "R",
            "requester": "123456789012",
            "reason": "PutObject",
        }
        events.put_events(
            Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(event)}]
        )
        time.sleep(3)
        assert len(jobs()) == 1
        # When the same file is uploaded again, Then it is a new version and so a new job
        s3.put_object(
            Bucket=info["bucket"],
            Key="input/home/users.jsonl",
            Body=(SAMPLES / "home" / "users.jsonl").read_bytes(),
        )
        _wait(lambda: len([j for j in jobs() if j["status"]["S"] == "EXPORTED"]) == 2)
        # When a file's name has a space, "+", "%" and a non-ASCII letter: S3's EventBridge events carry
        # the key as it is (S3 User Guide, "EventBridge event message structure"; only the S3 event
        # notifications sent to SNS, SQS or Lambda URL-encode it, "Event message structure")
        odd = "input/home/my users+1 100%é.jsonl"
        s3.put_object(Bucket=info["bucket"], Key=odd, Body=(SAMPLES / "home" / "users.jsonl").read_bytes())
        # Then that exact object is read and becomes a job like any other
        _wait(lambda: [j for j in jobs() if j["sourceKey"]["S"] == odd and j["status"]["S"] == "EXPORTED"])
        assert info["undeliverable_notifications"] == []  # every alert rule and alarm can reach its topic
        # And the chunks queues it names are FIFO, and redrive-chunks moves a dead-lettered chunk back
        # (one already counted here: the worker that gets it again finds it done and lets it go)
        sqs = session.client("sqs", endpoint_url=info["endpoint"])
        for url in (info["chunks_queue"], info["chunks_dead_letter_queue"]):
            assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue"])["Attributes"] == {
                "FifoQueue": "true"
            }
        chunk = {
            "jobName": job["jobName"]["S"],
            "chunkId": "0.0",
            "bucket": info["bucket"],
            "key": "output/home/users.jsonl.out",
            "etag": "e",
            "start": 0,
            "end": 1,
            "generatedAt": "2026-11-23T06:00:00Z",
        }
        sqs.send_message(
            QueueUrl=info["chunks_dead_letter_queue"],
            MessageBody=json.dumps(chunk),
            MessageGroupId="dead",
            MessageDeduplicationId="dead",
        )
        redriven = subprocess.run(  # noqa: S603 - our own command
            [
                sys.executable,
                "-m",
                "batchrecs_local",
                "redrive-chunks",
                "--dlq-url",
                info["chunks_dead_letter_queue"],
            ]
            + ["--queue-url", info["chunks_queue"], "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "AWS_ENDPOINT_URL": info["endpoint"], "AWS_ACCESS_KEY_ID": "local"}
            | {"AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": info["region"]},
            check=False,
            timeout=60,
        )
        assert redriven.returncode == 0, redriven.stderr
        assert json.loads(redriven.stdout) == {"moved": 1}

        def chunks_left() -> int:
            attributes = sqs.get_queue_attributes(QueueUrl=info["chunks_queue"], AttributeNames=["All"])
            counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
            return sum(int(attributes["Attributes"][name]) for name in counts)

        _wait(lambda: chunks_left() == 0)
    finally:
        # And SIGTERM stops it cleanly
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(
                f"not stopped 30 s after SIGTERM: {process.communicate()[1][-3000:]}"
            ) from None
    assert code == 0, process.stderr.read() if process.stderr else ""
    # And it printed each job's state changes as they happened, a line each (#17, part 2)
    assert process.stdout is not None
    changes = [
        json.loads(line)["jobChange"] for line in process.stdout.read().splitlines() if "jobChange" in line
    ]
    statuses = [change["status"] for change in changes if change["jobName"] == job["jobName"]["S"]]
    assert statuses[0] == "RECEIVED" and statuses[-1] == "EXPORTED"
    assert {"CREATE PENDING", "ACTIVE", "EXPORTING"} <= set(statuses)
    assert len({change["jobName"] for change in changes}) == 3  # the three uploads' jobs


def test_local_up_fires_routes_schedules_on_a_scaled_clock(tmp_path: Any) -> None:
    from tests.conftest import shipped_routes_with

    # Given a route scheduled daily, its standing input in place, and a day passing in about half a second
    routes = shipped_routes_with(
        tmp_path, "home", schedule="rate(1 day)", standingInput="input/home/all.jsonl"
    )
    process = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "batchrecs_local", "local", "up", "--json", "--port", str(_free_port()),
         "--routes", str(routes), "--schedule-scale", "200000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        session = boto3.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name=info["region"]
        )
        session.client("s3", endpoint_url=info["endpoint"]).put_object(
            Bucket=info["bucket"],
            Key="input/home/all.jsonl",
            Body=(SAMPLES / "home" / "users.jsonl").read_bytes(),
        )
        ddb = session.client("dynamodb", endpoint_url=info["endpoint"])

        def scheduled_runs() -> list[dict[str, Any]]:
            items = ddb.scan(TableName=info["jobs_table"])["Items"]
            return [
                i
                for i in items
                if i["jobName"]["S"].startswith("home-all-") and i["status"]["S"] == "EXPORTED"
            ]

        # Then the monitor made the schedule, and it fires by itself, once per (scaled) day
        assert _wait(scheduled_runs, timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


def test_demo_runs_every_sample_route_and_shows_records() -> None:
    result = batchrecs("demo", timeout=300)
    assert result.code == 0, result.stdout + result.stderr[-3000:]
    table = result.stdout[result.stdout.index("\nroute ") :].split("\n\n", 1)[0].splitlines()[3:]
    rows = {tuple(line.split()[:2]): line.split()[3] for line in table}
    assert rows == {
        ("home", "users.jsonl"): "EXPORTED",
        ("related", "items.csv"): "EXPORTED",
        ("themes", "items.jsonl"): "EXPORTED",
        ("ranking", "users.json"): "EXPORTED",
        ("segments", "items.jsonl"): "EXPORTED",
        ("segment-attributes", "queries.jsonl"): "EXPORTED",
        ("weekly-email", "users.jsonl"): "EXPORTED",
        ("home", "rejected.jsonl"): "REJECTED",
    }
    for sk in (
        '"sk": "home"',
        '"sk": "related"',
        '"sk": "themes"',
        '"sk": "ranking"',
        '"sk": "segments#',
        '"sk": "segment-attributes#',
    ):
        assert sk in result.stdout
    assert '"theme": "' in result.stdout and '"themeScores": [' in result.stdout  # Content Generator themes
    assert "weekly-email: 34 contacts subscribed to weekly-picks" in result.stdout
    assert '"emailAddress": "user3@example.com", "unsubscribeAll": true' in result.stdout
    assert "line 2: expected userId" in result.stdout
    # the self-refreshing sample: its schedule fired, fresh data imported, a new version trained and used
    assert "Scheduled run of weekly-fresh (weekly-fresh-all-users-" in result.stdout
    assert "local-user-personalization/2 trained, 20 records name it" in result.stdout
    assert "user 1's top 10 in Documentary: 0% with version 1, 90% with the new version" in result.stdout
    assert "demo finished" in result.stdout
