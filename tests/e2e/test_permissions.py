"""Every AWS call each real handler makes in a whole run, compared with what template.yaml grants it.

The local cloud enforces the template's policies (a call it does not allow fails as on AWS); this test
runs it in recording mode instead, so one run lists every missing grant at once, readably.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from batchrecs_local.session import LocalCloud, Options

from tests.conftest import ROOT

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]
SAMPLES = ROOT / "samples"
FUNCTIONS = {"submitfunction", "monitorfunction", "exportplannerfunction", "exportworkerfunction"}


@pytest.fixture(scope="module")
def recorded_run() -> Iterator[LocalCloud]:
    environment = dict(os.environ)  # the local runtime sets the functions' variables in this process
    try:
        with LocalCloud(Options(enforce_iam=False, chunk_bytes=2048)) as cloud:
            keys = [
                cloud.upload(SAMPLES / "home" / "users.jsonl", "home"),
                cloud.upload(SAMPLES / "segments" / "items.jsonl", "segments"),
                cloud.upload(SAMPLES / "weekly-email" / "users.jsonl", "weekly-email"),
                cloud.upload(SAMPLES / "rejected.jsonl", "home"),
            ]
            jobs = cloud.wait_for(keys, timeout=180)
            assert sorted(job["status"] for job in jobs.values()) == ["EXPORTED"] * 3 + ["REJECTED"]
            yield cloud
    finally:
        os.environ.clear()
        os.environ.update(environment)


def test_every_call_of_every_function_is_granted_by_the_template(recorded_run: LocalCloud) -> None:
    # Given a run through a DynamoDB route, a segment route, an SES route and a rejected file
    iam = recorded_run.endpoint.iam
    # Then each of the four functions made calls (the recording saw them)...
    callers = {caller.rsplit("-", 1)[-1] for caller in iam.calls}
    assert callers >= FUNCTIONS, sorted(iam.calls)
    # ...and the template allowed every one of them, or this lists the grants to add
    missing = sorted({denial.message() for denial in iam.denials})
    assert missing == [], "template.yaml lacks:\n" + "\n".join(missing)


def test_the_services_reached_the_bucket_as_the_bucket_policy_allows(recorded_run: LocalCloud) -> None:
    # Personalize read staged/ and wrote output/, SES read ses-imports/, each as a service principal
    calls = recorded_run.endpoint.iam.calls
    assert {"s3:GetObject", "s3:PutObject"} <= calls["personalize.amazonaws.com"]
    assert calls["ses.amazonaws.com"] == {"s3:GetObject"}
