"""Job options end to end on one local cloud deployed with DataKmsKeyArn, the template's IAM enforced (issue
#15, parts 2 and 3): the bucket encrypts with the key, every job names it for its input and output, the
functions, Personalize and SES use it only as the template and the key policy allow; a route's
rankingInfluence reaches the job and changes its ranking; an upload past a route's lines per job runs as
several jobs and ends as one (issue #16, part 2)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from batchrecs_local.session import LocalCloud, Options

from tests.conftest import ROOT

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]  # the in-process cloud

ROUTES = """
  popular-picks:
    kind: user-personalization
    solutionVersionArn: ${USER_PERSONALIZATION_SOLUTION_VERSION_ARN}
    numResults: 10
    rankingInfluence: {POPULARITY: 1.0}
    destination: {type: dynamodb}
  home-in-parts:
    kind: user-personalization
    solutionVersionArn: ${USER_PERSONALIZATION_SOLUTION_VERSION_ARN}
    numResults: 5
    maxLinesPerJob: 15
    destination: {type: dynamodb}
  email-in-parts:
    kind: user-personalization
    solutionArn: ${USER_PERSONALIZATION_SOLUTION_ARN}
    numResults: 5
    maxLinesPerJob: 15
    destination:
      type: ses
      contactList: ${SES_CONTACT_LIST_NAME}
      topic: weekly-picks
      address:
        type: directory
        table: ${USER_DIRECTORY_TABLE}
        keyAttribute: userId
        emailAttribute: email
"""


@dataclass
class Run:
    cloud: LocalCloud
    jobs: dict[str, dict[str, Any]]  # route -> its (upload's) job
    events: list[dict[str, Any]]  # what the stack's bus carried


def _tap(cloud: LocalCloud) -> str:
    """A queue that receives every batchrecs event on the stack's bus (as a consumer's rule would)."""
    sqs, events = cloud.endpoint.client("sqs"), cloud.endpoint.client("events")
    url = sqs.create_queue(QueueName="events-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = cloud.outputs["EventBusName"]
    events.put_rule(Name="events-tap", EventBusName=bus, EventPattern=json.dumps({"source": ["batchrecs"]}))
    events.put_targets(Rule="events-tap", EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
    return url


def _drain(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs, found = cloud.endpoint.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # Given the stack deployed with DataKmsKeyArn (a customer managed key with the README's key policy)
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text((ROOT / "config" / "routes.yaml").read_text() + ROUTES)
    environment = dict(os.environ)  # the local runtime sets the functions' variables in this process
    try:
        with LocalCloud(Options(routes_file=routes, kms=True)) as cloud:
            tap = _tap(cloud)
            # When a DynamoDB route's, an SES route's and a rankingInfluence route's files are dropped, and
            # files of 43 and 40 users on routes of 15 lines per job
            keys = {
                route: cloud.upload(ROOT / "samples" / sample / "users.jsonl", route)
                for route, sample in (
                    ("home", "home"),
                    ("weekly-email", "weekly-email"),
                    ("popular-picks", "home"),
                    ("home-in-parts", "home"),
                    ("email-in-parts", "weekly-email"),
                )
            }
            jobs = cloud.wait_for(list(keys.values()), timeout=240)
            time.sleep(1)  # the last events reach the tap
            yield Run(cloud, {route: jobs[key] for route, key in keys.items()}, _drain(cloud, tap))
    finally:
        os.environ.clear()
        os.environ.update(environment)


def test_with_a_data_key_every_object_and_job_uses_it_and_each_caller_may(run: Run) -> None:
    cloud = run.cloud
    s3 = cloud.endpoint.client("s3")
    rule = s3.get_bucket_encryption(Bucket=cloud.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    key = rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    assert (
        rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms" and rule["BucketKeyEnabled"]
    )
    # Then every job exported: the submit, planner, worker and monitor functions read and wrote SSE-KMS
    # objects, Personalize read and wrote them as its role, and SES read the contact imports, all allowed
    uploads = list(run.jobs.values())
    parts = [job for job in cloud.jobs() if job.get("partOf") in {upload["jobName"] for upload in uploads}]
    for job in [upload for upload in uploads if not upload.get("parts")] + parts:
        assert job["status"] == "EXPORTED", job.get("failureReason")
        request = json.loads(job["request"])
        assert request["jobInput"]["s3DataSource"]["kmsKeyArn"] == key
        assert request["jobOutput"]["s3DataDestination"]["kmsKeyArn"] == key
        staged = s3.head_object(Bucket=cloud.bucket, Key=job["stagedPath"].split("/", 3)[3])
        assert (staged["ServerSideEncryption"], staged["SSEKMSKeyId"]) == ("aws:kms", key)
    assert cloud.endpoint.iam.denials == []
    calls = cloud.endpoint.iam.calls
    for function in (
        "SubmitFunction",
        "ExportWorkerFunction",
        "MonitorFunction",
    ):  # the planner only lists here
        caller = next(name for name in calls if function.lower() in name.lower())
        assert calls[caller] & {"kms:Decrypt", "kms:GenerateDataKey"}, caller
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= calls["personalize.amazonaws.com"]
    assert "kms:Decrypt" in calls["ses.amazonaws.com"]
    assert any(c["topicPreferences"].get("weekly-picks") == "OPT_IN" for c in cloud.contacts())


def test_a_routes_ranking_influence_is_sent_and_ranks_popular_items_first(run: Run) -> None:
    # Given a user-personalization route with rankingInfluence POPULARITY 1.0
    job = run.jobs["popular-picks"]
    # Then the job asks for it (BatchInferenceJobConfig.rankingInfluence)
    assert job["status"] == "EXPORTED", job.get("failureReason")
    request = json.loads(job["request"])
    assert request["batchInferenceJobConfig"] == {"rankingInfluence": {"POPULARITY": 1.0}}
    # And every user's items follow the items' popularity (what the user has seen left out)
    version = run.cloud.endpoint.emulator.training.version(request["solutionVersionArn"])
    assert version is not None and version.recommender is not None
    popular = version.recommender.popular(len(version.recommender.dataset.item_ids))
    rank = {item: i for i, item in enumerate(popular)}
    records = [r for r in run.cloud.records() if r["sk"] == "popular-picks"]
    assert len(records) == job["export"]["recordsWritten"] > 0
    for record in records:
        assert [rank[i] for i in record["items"]] == sorted(rank[i] for i in record["items"]), record["pk"]
    # while the plain home route of the same users is not in popularity order for all of them
    home = [r for r in run.cloud.records() if r["sk"] == "home"]
    assert any([rank[i] for i in r["items"]] != sorted(rank[i] for i in r["items"]) for r in home)


@pytest.mark.parametrize("route", ["home-in-parts", "email-in-parts"])
def test_an_upload_past_the_lines_per_job_runs_as_three_jobs_and_ends_as_one(run: Run, route: str) -> None:
    cloud, upload = run.cloud, run.jobs[route]
    # Then the upload's job names 3 parts, each a job of 15, 15 and the rest of the users
    assert upload["status"] == "EXPORTED", upload.get("failureReason")
    users = upload["validation"]["valid"]  # the file's unique users
    assert 30 < users <= 45
    parts = [next(job for job in cloud.jobs() if job["jobName"] == name) for name in upload["parts"]]
    assert [part["validation"]["valid"] for part in parts] == [15, 15, users - 30]
    assert all(part["status"] == "EXPORTED" and part["partOf"] == upload["jobName"] for part in parts)
    staged = {part["stagedPath"] for part in parts}
    assert len(staged) == 3 and all(
        json.loads(p["request"])["jobInput"]["s3DataSource"]["path"] in staged for p in parts
    )
    # And every user's record was written once, by the part that read it, with the counts combined
    export = upload["export"]
    assert (export["lines"], export["linesWritten"], export["linesFailed"]) == (users, users, 0)
    assert export["chunks"] == sum(part["chunksTotal"] for part in parts)
    if route == "home-in-parts":
        records = [r for r in cloud.records() if r["sk"] == route]
        assert sorted(r["pk"] for r in records) == sorted({r["pk"] for r in records})
        assert export["recordsWritten"] == len(records) == users
        assert {r["jobName"] for r in records} == {part["jobName"] for part in parts}
    else:  # the SES route's contact imports, one per part, add up on the upload
        contacts = export["contacts"]
        assert contacts == {key: sum(part["contactImport"].get(key, 0) for part in parts) for key in contacts}
        # and the parts together reached the contacts that one job of the same file reached
        whole = run.jobs["weekly-email"]["export"]
        assert (contacts["contacts"], export["usersWithoutAddress"]) == (
            whole["contacts"]["contacts"],
            whole["usersWithoutAddress"],
        )
        assert contacts["contacts"] > 0
    # And the bus carried one Batch Export Completed for the upload, with each part's outcome, and one
    # Batch Export Part Completed per part
    completed = [e["detail"] for e in run.events if e["detail-type"] == "Batch Export Completed"]
    mine = [d for d in completed if d["jobName"] in {upload["jobName"], *upload["parts"]}]
    assert [d["jobName"] for d in mine] == [upload["jobName"]]
    assert [p["jobName"] for p in mine[0]["parts"]] == upload["parts"]
    part_events = [e["detail"] for e in run.events if e["detail-type"] == "Batch Export Part Completed"]
    assert sorted(d["jobName"] for d in part_events if d["partOf"] == upload["jobName"]) == sorted(
        upload["parts"]
    )
