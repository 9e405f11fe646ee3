"""What each AWS call asks IAM for, read from the request botocore really sends (captured, not sent)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from batchrecs_local.iam.requests import HttpRequest, NotModelled, requests_for


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


def wire(service: str, operation: str, **params: Any) -> HttpRequest:
    """The request botocore would send for ``operation``, as the local endpoint receives it."""
    client = boto3.client(service, endpoint_url="http://127.0.0.1:4566", region_name="us-east-1")

    def capture(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured) as captured:
        getattr(client, operation)(**params)
    request = captured.value.request
    url = urlsplit(request.url)
    signing = request.headers["Authorization"].decode().split("Credential=")[1].split("/")
    body = request.body or b""
    return HttpRequest(
        service=signing[3],
        method=request.method,
        path=unquote(url.path),
        query=parse_qs(url.query, keep_blank_values=True),
        headers={
            key.lower(): value.decode() if isinstance(value, bytes) else value
            for key, value in request.headers.items()
        },
        body=body if isinstance(body, bytes) else body.read() if hasattr(body, "read") else body.encode(),
        region="us-east-1",
        account="123456789012",
    )


def _asks(service: str, operation: str, **params: Any) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (r.action, r.resource, {k: v for k, v in r.context.items() if k != "aws:SecureTransport"})
        for r in requests_for(wire(service, operation, **params))
    ]


def test_s3_object_calls_name_the_object_and_listing_names_the_prefix() -> None:
    key = "input/home/my file+1 100%é.jsonl"  # a space, +, % and a non-ASCII letter, as uploaded
    obj = f"arn:aws:s3:::data/{key}"
    assert _asks("s3", "get_object", Bucket="data", Key=key) == [("s3:GetObject", obj, {})]
    assert _asks("s3", "head_object", Bucket="data", Key=key) == [("s3:GetObject", obj, {})]
    assert _asks("s3", "put_object", Bucket="data", Key=key, Body=b"x") == [("s3:PutObject", obj, {})]
    assert _asks("s3", "list_objects_v2", Bucket="data", Prefix="output/home/") == [
        ("s3:ListBucket", "arn:aws:s3:::data", {"s3:prefix": "output/home/"})
    ]
    assert _asks("s3", "create_multipart_upload", Bucket="data", Key="staged/a") == [
        ("s3:PutObject", "arn:aws:s3:::data/staged/a", {})
    ]
    assert _asks("s3", "abort_multipart_upload", Bucket="data", Key="staged/a", UploadId="u") == [
        ("s3:AbortMultipartUpload", "arn:aws:s3:::data/staged/a", {})
    ]
    assert _asks("s3", "copy_object", Bucket="data", Key="staged/b", CopySource="data/input/a b") == [
        ("s3:PutObject", "arn:aws:s3:::data/staged/b", {}),
        ("s3:GetObject", "arn:aws:s3:::data/input/a b", {}),
    ]


def test_dynamodb_calls_name_their_tables_and_indexes() -> None:
    table = "arn:aws:dynamodb:us-east-1:123456789012:table/"
    assert _asks("dynamodb", "update_item", TableName="jobs", Key={"jobName": {"S": "j"}}) == [
        ("dynamodb:UpdateItem", table + "jobs", {})
    ]
    query = _asks(
        "dynamodb",
        "query",
        TableName="jobs",
        IndexName="inflight-index",
        KeyConditionExpression="inflight = :x",
        ExpressionAttributeValues={":x": {"S": "1"}},
    )
    assert query == [("dynamodb:Query", table + "jobs/index/inflight-index", {})]
    put = {"PutRequest": {"Item": {"pk": {"S": "1"}}}}
    assert _asks("dynamodb", "batch_write_item", RequestItems={"recs": [put], "other": [put]}) == [
        ("dynamodb:BatchWriteItem", table + "recs", {}),
        ("dynamodb:BatchWriteItem", table + "other", {}),
    ]


def test_sqs_batch_calls_need_the_single_message_actions() -> None:
    url = "http://127.0.0.1:4566/123456789012/chunks.fifo"
    entries = [{"Id": "1", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d"}]
    assert _asks("sqs", "send_message_batch", QueueUrl=url, Entries=entries) == [
        ("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:chunks.fifo", {})
    ]


def test_put_events_names_each_bus() -> None:
    entries = [{"Source": "batchrecs", "DetailType": "x", "Detail": "{}", "EventBusName": "bus"}]
    assert _asks("events", "put_events", Entries=entries) == [
        ("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/bus", {})
    ]


def test_creating_a_batch_job_passes_its_role_to_personalize() -> None:
    asks = _asks(
        "personalize",
        "create_batch_inference_job",
        jobName="home-1",
        solutionVersionArn="arn:aws:personalize:us-east-1:123456789012:solution/home/1",
        jobInput={"s3DataSource": {"path": "s3://data/staged/x"}},
        jobOutput={"s3DataDestination": {"path": "s3://data/output/x/"}},
        roleArn="arn:aws:iam::123456789012:role/personalize",
    )
    assert asks == [
        (
            "personalize:CreateBatchInferenceJob",
            "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/home-1",
            {},
        ),
        (
            "iam:PassRole",
            "arn:aws:iam::123456789012:role/personalize",
            {"iam:PassedToService": "personalize.amazonaws.com"},
        ),
    ]


def test_ses_contact_list_calls_name_the_list_and_import_jobs_have_no_resource() -> None:
    assert _asks("sesv2", "list_contacts", ContactListName="batchrecs") == [
        ("ses:ListContacts", "arn:aws:ses:us-east-1:123456789012:contact-list/batchrecs", {})
    ]
    assert _asks("sesv2", "get_import_job", JobId="j") == [("ses:GetImportJob", "*", {})]


def test_every_request_is_made_over_tls_as_boto3_does_on_aws() -> None:
    [request] = requests_for(wire("s3", "get_object", Bucket="data", Key="k"))
    assert request.context["aws:SecureTransport"] == "true"


def test_a_call_the_check_cannot_read_is_not_guessed() -> None:
    with pytest.raises(NotModelled):
        requests_for(wire("s3", "get_bucket_policy", Bucket="data"))
