"""Handlers end to end against moto in server mode (S3, DynamoDB, EventBridge, SQS) over loopback HTTP,
with Personalize stubbed in botocore.

Server mode, not ``mock_aws``: the export's fast writer signs and sends its own HTTP requests (it does
not go through botocore's send hooks), so it needs a real endpoint, found through ``AWS_ENDPOINT_URL``
as on AWS. One server (the local cloud's endpoint: moto behind its IAM check) runs for the session and
is reset before every test. A handler invoked through ``invoke`` signs its calls as its function's role,
and each call must be allowed by that role's policy in template.yaml (resolved to the names below), as on
AWS; the tests' own setup and checks are not checked.

The resources mirror template.yaml (same keys, index and TTL attribute). Every event published on the
bus is also delivered to a tap queue by a catch-all rule, so tests read what consumers would get.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
import urllib3
from batchrecs_local.endpoint import LocalEndpoint
from batchrecs_local.iam import identity
from batchrecs_local.stack import grant_template_permissions, table_request
from botocore.stub import Stubber

from tests.conftest import ROOT, ROUTES_ENV, SOLUTION_ARNS

BUCKET = "batchrecs-data"
JOBS_TABLE = "batchrecs-jobs"
RECS_TABLE = "batchrecs-recommendations"
LEDGER_TABLE = "batchrecs-preference-ledger"
BUS = "batchrecs-bus"
SCHEDULE_GROUP = "batchrecs-routes"
ROLE_ARN = "arn:aws:iam::123456789012:role/batchrecs-personalize"
# the template's resources under the names these tests create them with
PHYSICAL = {
    "DataBucket": BUCKET,
    "JobsTable": JOBS_TABLE,
    "RecommendationsTable": RECS_TABLE,
    "PreferenceLedgerTable": LEDGER_TABLE,
    "EventBus": BUS,
    "ChunksQueue": "chunks.fifo",
    "PersonalizeServiceRole": ROLE_ARN.rsplit("/", 1)[-1],
    "UserDirectoryTable": ROUTES_ENV["USER_DIRECTORY_TABLE"],
    "ContactList": ROUTES_ENV["SES_CONTACT_LIST_NAME"],
    "RouteSchedules": SCHEDULE_GROUP,
}
HANDLERS = {  # functions/<name> -> the template's function
    "submit": "SubmitFunction",
    "monitor": "MonitorFunction",
    "export_planner": "ExportPlannerFunction",
    "export_worker": "ExportWorkerFunction",
}


@dataclass
class LambdaContext:
    function_name: str = "batchrecs-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:batchrecs-test"
    aws_request_id: str = "7d3f6c2e-0000-4000-8000-000000000000"


@dataclass
class Cloud:
    s3: Any
    ddb: Any
    events: Any
    sqs: Any
    tap_url: str
    chunks_url: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return self.s3.head_object(Bucket=BUCKET, Key=key)

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        response = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def job(self, name: str) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=JOBS_TABLE, Key={"jobName": {"S": name}}).get("Item")
        assert item is not None, f"no job {name}"
        return item

    def jobs(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=JOBS_TABLE)["Items"]

    def records(self) -> dict[tuple[str, str], dict[str, Any]]:
        items = self.ddb.scan(TableName=RECS_TABLE)["Items"]
        return {(item["pk"]["S"], item["sk"]["S"]): item for item in items}

    def published(self) -> list[dict[str, Any]]:
        """Every event delivered to the tap so far, oldest first."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.tap_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return self.seen
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.tap_url, ReceiptHandle=message["ReceiptHandle"])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = str(ROOT / "tests" / "integration")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.enable_socket)
            item.add_marker(pytest.mark.allow_hosts(["127.0.0.1"]))


@pytest.fixture(scope="session")
def local_endpoint() -> Iterator[LocalEndpoint]:
    endpoint = LocalEndpoint().start()
    parameters = {
        "UserPersonalizationSolutionVersionArn": SOLUTION_ARNS["USER_PERSONALIZATION_SOLUTION_VERSION_ARN"],
        "RelatedItemsSolutionVersionArn": SOLUTION_ARNS["RELATED_ITEMS_SOLUTION_VERSION_ARN"],
        "PersonalizedRankingSolutionVersionArn": SOLUTION_ARNS["PERSONALIZED_RANKING_SOLUTION_VERSION_ARN"],
        "ItemAffinitySolutionVersionArn": SOLUTION_ARNS["ITEM_AFFINITY_SOLUTION_VERSION_ARN"],
        "ItemAttributeAffinitySolutionVersionArn": SOLUTION_ARNS[
            "ITEM_ATTRIBUTE_AFFINITY_SOLUTION_VERSION_ARN"
        ],
    }
    grant_template_permissions(endpoint.iam, parameters, PHYSICAL, {})
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def moto_endpoint(local_endpoint: LocalEndpoint) -> str:
    return local_endpoint.url


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Cloud:
    urllib3.request("POST", f"{moto_endpoint}/moto-api/reset")
    identity.install("testing", "testing")  # a handler's calls are signed as its function's role
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("JOBS_TABLE_NAME", JOBS_TABLE)
    monkeypatch.setenv("RECOMMENDATIONS_TABLE_NAME", RECS_TABLE)
    monkeypatch.setenv("PREFERENCE_LEDGER_TABLE_NAME", LEDGER_TABLE)
    # routes' schedules: the group, and what a schedule invokes (the template's names for the rest)
    monkeypatch.setenv("SCHEDULE_GROUP_NAME", SCHEDULE_GROUP)
    monkeypatch.setenv("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/batchrecs-routeschedulerrole")
    monkeypatch.setenv(
        "SUBMIT_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:batchrecs-submitfunction"
    )
    monkeypatch.setenv(
        "FAILED_EVENTS_QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:batchrecs-failedeventsqueue"
    )
    monkeypatch.setenv("DATA_BUCKET_NAME", BUCKET)
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("ROUTES_FILE", str(ROOT / "config" / "routes.yaml"))
    monkeypatch.setenv("PERSONALIZE_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("EXPORT_CHUNK_BYTES", "512")  # small chunks: every multi-line file fans out
    monkeypatch.setenv("CHUNK_MAX_RECEIVES", "3")
    monkeypatch.delenv("CHUNK_RETRY_SECONDS", raising=False)  # the template's default (an e2e cloud sets 1)
    monkeypatch.setenv("EXPORT_WORKER_CONCURRENCY", "2")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})  # as the template
    ddb = boto3.client("dynamodb")
    ddb.create_table(**table_request("JobsTable", JOBS_TABLE))  # keys and indexes as the template
    ddb.create_table(**table_request("RecommendationsTable", RECS_TABLE))
    ddb.create_table(**table_request("PreferenceLedgerTable", LEDGER_TABLE))
    boto3.client("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)
    ddb.update_time_to_live(
        TableName=RECS_TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)
    sqs = boto3.client("sqs")
    tap_url = sqs.create_queue(QueueName="tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="tap", EventBusName=BUS, EventPattern=json.dumps({"source": ["batchrecs"]}))
    events.put_targets(Rule="tap", EventBusName=BUS, Targets=[{"Id": "tap", "Arn": tap_arn}])
    chunks_url = sqs.create_queue(QueueName="chunks.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    monkeypatch.setenv("CHUNKS_QUEUE_URL", chunks_url)
    return Cloud(s3=s3, ddb=ddb, events=events, sqs=sqs, tap_url=tap_url, chunks_url=chunks_url)


@pytest.fixture
def personalize() -> Iterator[tuple[Any, Stubber]]:
    """A real botocore Personalize client whose responses come from a Stubber with expected params."""
    client = boto3.client("personalize", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def load_handler(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` as its own module (each function's file is ``app.py``)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"functions_{name}_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, personalize: tuple[Any, Stubber]) -> Callable[[str, dict], dict]:
    """Invoke a function's real handler; only its Personalize client is the stubbed one."""
    from batchrecs import compose
    from batchrecs.settings import ExportSettings, ExportWorkerSettings, MonitorSettings, SubmitSettings

    client, _ = personalize
    builders = {
        "submit": ("submitter", lambda: compose.build_submitter(SubmitSettings(), client)),  # type: ignore[call-arg]
        "monitor": ("monitor", lambda: compose.build_monitor(MonitorSettings(), client)),  # type: ignore[call-arg]
        "export_planner": ("planner", lambda: compose.build_planner(ExportSettings())),  # type: ignore[call-arg]
        "export_worker": (
            "chunk_exporter",
            lambda: compose.build_chunk_exporter(ExportWorkerSettings()),  # type: ignore[call-arg]
        ),
    }

    def call(name: str, event: dict) -> dict:
        module = load_handler(name)
        attribute, build = builders[name]
        monkeypatch.setattr(module, attribute, build)
        with identity.acting_as(identity.function_key(HANDLERS[name])):
            return module.handler(copy.deepcopy(event), LambdaContext())

    return call


def sqs_event(messages: list[dict[str, Any]], receive_count: int = 1) -> dict[str, Any]:
    """An SQS event source batch, as Lambda delivers it, from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "0",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                    **{k: v for k, v in m.get("Attributes", {}).items() if k == "MessageGroupId"},
                },
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chunks.fifo",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / name).read_text())


def object_created(head: dict[str, Any], key: str, sequencer: str = "0055AED6DCD90281E5") -> dict[str, Any]:
    """The sample S3 'Object Created' event for an object just put in the test bucket."""
    event = sample_event("s3_object_created.json")
    event["detail"]["object"].update(
        {
            "key": key,
            "size": head["ContentLength"],
            "etag": head["ETag"].strip('"'),
            "sequencer": sequencer,
            "version-id": head.get("VersionId", "null"),
        }
    )
    return event


def upload_job_name(head: dict[str, Any], key: str, sequencer: str = "0055AED6DCD90281E5") -> str:
    """The name submit gives the job of the upload ``object_created`` describes (its identity is the
    event's sequencer and version id), found the way the submit handler finds it."""
    from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
    from batchrecs.compose import upload_from_event
    from batchrecs.jobs.naming import job_name

    upload = upload_from_event(S3EventNotificationEventBridgeModel(**object_created(head, key, sequencer)))
    return job_name(upload.route_and_name[0], key, upload.identity)


def solution(name: str) -> str:
    return SOLUTION_ARNS[name]
