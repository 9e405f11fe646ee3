"""Job options end to end on one local cloud deployed with DataKmsKeyArn, the template's IAM enforced (issue
#15, parts 2 and 3): the bucket encrypts with the key, every job names it for its input and output, the
functions, Personalize and SES use it only as the template and the key policy allow; a route's
rankingInfluence reaches the job and changes its ranking."""

from __future__ import annotations

import json
import os
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
"""


@dataclass
class Run:
    cloud: LocalCloud
    jobs: dict[str, dict[str, Any]]  # route -> its job


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    # Given the stack deployed with DataKmsKeyArn (a customer managed key with the README's key policy)
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text((ROOT / "config" / "routes.yaml").read_text() + ROUTES)
    environment = dict(os.environ)  # the local runtime sets the functions' variables in this process
    try:
        with LocalCloud(Options(routes_file=routes, kms=True)) as cloud:
            # When a DynamoDB route's, an SES route's and a rankingInfluence route's files are dropped
            keys = {
                route: cloud.upload(ROOT / "samples" / sample / "users.jsonl", route)
                for route, sample in (
                    ("home", "home"),
                    ("weekly-email", "weekly-email"),
                    ("popular-picks", "home"),
                )
            }
            jobs = cloud.wait_for(list(keys.values()), timeout=180)
            yield Run(cloud, {route: jobs[key] for route, key in keys.items()})
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
    for job in run.jobs.values():
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
