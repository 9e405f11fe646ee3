"""The local endpoint refuses a function's call its role does not allow, in each protocol's own error shape,
so boto3 raises the ClientError AWS would raise; the harness's own calls are not checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from batchrecs_local.endpoint import ACCOUNT, LocalEndpoint
from batchrecs_local.iam import Role
from botocore.exceptions import ClientError

KEY = "LOCALFNTESTFUNCTION"
ROLE = Role(
    "test-role",
    f"arn:aws:iam::{ACCOUNT}:role/test-role",
    [
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::iam-test/allowed/*"},
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::iam-test/*"},
            ],
        }
    ],
    session="test-function",
)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    local = LocalEndpoint().start()
    local.iam.add_role(ROLE, KEY)
    local.client("s3").create_bucket(Bucket="iam-test")
    for key in ("allowed/a", "private/a"):
        local.client("s3").put_object(Bucket="iam-test", Key=key, Body=b"x")
    yield local
    local.stop()


def test_an_allowed_call_goes_through_and_the_harness_is_not_checked(endpoint: LocalEndpoint) -> None:
    s3 = endpoint.client("s3", access_key=KEY)
    assert s3.get_object(Bucket="iam-test", Key="allowed/a")["Body"].read() == b"x"
    s3.put_object(Bucket="iam-test", Key="private/b", Body=b"y")
    assert endpoint.client("s3").get_object(Bucket="iam-test", Key="private/b")["Body"].read() == b"y"


@pytest.mark.parametrize(
    ("service", "call", "code", "action"),
    [
        ("s3", lambda c: c.get_object(Bucket="iam-test", Key="private/a"), "AccessDenied", "s3:GetObject"),
        (
            "dynamodb",
            lambda c: c.get_item(TableName="jobs", Key={"k": {"S": "1"}}),
            "AccessDeniedException",
            "dynamodb:GetItem",
        ),
        (
            "sqs",
            lambda c: c.send_message(QueueUrl=f"http://x/{ACCOUNT}/q", MessageBody="x"),
            "AccessDenied",
            "sqs:SendMessage",
        ),
        (
            "events",
            lambda c: c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}]),
            "AccessDeniedException",
            "events:PutEvents",
        ),
        (
            "sesv2",
            lambda c: c.list_contacts(ContactListName="l"),
            "AccessDeniedException",
            "ses:ListContacts",
        ),
        (
            "personalize",
            lambda c: c.describe_batch_inference_job(batchInferenceJobArn="arn:aws:personalize:x"),
            "AccessDeniedException",
            "personalize:DescribeBatchInferenceJob",
        ),
        ("s3", lambda c: c.get_bucket_policy(Bucket="iam-test"), "AccessDenied", "cannot read it"),
    ],
)
def test_a_call_the_role_does_not_allow_fails_as_on_aws(
    endpoint: LocalEndpoint, service: str, call: Callable[[Any], Any], code: str, action: str
) -> None:
    client = endpoint.client(service, access_key=KEY)
    with pytest.raises(ClientError) as denied:
        call(client)
    assert denied.value.response["Error"]["Code"] == code
    message = denied.value.response["Error"]["Message"]
    assert message.startswith(
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/test-role/test-function is not authorized"
    )
    assert action in message
