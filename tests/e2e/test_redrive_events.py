"""A submit that keeps failing ends in the failed-events queue as Lambda's invocation record; once the
cause is gone, ``batchrecs redrive-events`` runs it again and the job completes (nothing stuck)."""

from __future__ import annotations

import json
import os
import time

import pytest
from batchrecs_local.cli import main
from batchrecs_local.faults import Fault
from batchrecs_local.iam.identity import function_key
from batchrecs_local.session import LocalCloud, Options

from tests.conftest import ROOT

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]


def test_a_submit_that_failed_all_its_retries_is_run_again_by_redrive_events(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = dict(os.environ)  # the local runtime sets the functions' variables in this process
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # each attempt fails at once (no SDK retries to wait out)
    try:
        with LocalCloud(Options()) as cloud:
            # Given S3 answering SlowDown to every read of the upload by the submit function
            fault = cloud.endpoint.faults.add(
                Fault("s3", "GetObject", 503, "SlowDown", times=10**6, caller=function_key("SubmitFunction"))
            )
            key = cloud.upload(ROOT / "samples" / "home" / "users.jsonl", "home")
            queue = cloud.outputs["FailedEventsQueueUrl"]
            sqs = cloud.endpoint.client("sqs")
            # When its 3 attempts fail, Then the invocation record reaches the failed-events queue
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
                )
                if int(attributes["Attributes"]["ApproximateNumberOfMessages"]):
                    break
                time.sleep(0.5)
            [job] = [job for job in cloud.jobs() if job["sourceKey"] == key]
            assert job["status"] == "RECEIVED" and fault.injected > 0
            # When the cause is gone and the queue is re-driven (as an operator would, with the CLI)
            cloud.endpoint.faults.clear()
            monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint.url)
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "operator")
            monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator")
            monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
            capsys.readouterr()
            assert main(["redrive-events", "--queue-url", queue, "--json"]) == 0
            [done] = [
                json.loads(line) for line in capsys.readouterr().out.splitlines() if '"invoked"' in line
            ]
            assert (done["invoked"], done["left"]) == (1, [])
            # Then the submit runs again and the job ends EXPORTED
            assert cloud.wait_for([key], timeout=60)[key]["status"] == "EXPORTED"
    finally:
        os.environ.clear()
        os.environ.update(environment)
