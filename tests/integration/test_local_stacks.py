"""DescribeStacks on the local endpoint, as the operator commands call it to find a stack's outputs.

The local endpoint answers DescribeStacks itself (not moto's CloudFormation, whose import costs about
0.9 s of every local start); these tests hold it to the API: the outputs by key, and for a name no stack
has the ValidationError "Stack with id NAME does not exist" (CloudFormation API reference,
DescribeStacks: "ValidationError" is the error a missing stack gives)."""

from __future__ import annotations

import boto3
import pytest
from batchrecs.operate.stack import StackError, find_stack
from batchrecs_local.endpoint import CREDENTIALS, REGION, LocalEndpoint
from botocore.exceptions import ClientError


def _session() -> boto3.Session:
    return boto3.Session(region_name=REGION, **CREDENTIALS)


def test_a_stack_put_on_the_endpoint_is_found_by_name_with_its_outputs(local_endpoint: LocalEndpoint) -> None:
    local_endpoint.stacks.put("ops-a", {"DataBucketName": "bucket-a", "Odd": "<&>"})

    stack = find_stack("ops-a", local_endpoint.url, _session())

    assert stack.outputs == {"DataBucketName": "bucket-a", "Odd": "<&>"}
    described = (
        _session()
        .client("cloudformation", endpoint_url=local_endpoint.url)
        .describe_stacks(StackName="ops-a")["Stacks"][0]
    )
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert described["StackId"].startswith("arn:aws:cloudformation:us-east-1:")
    by_id = (
        _session()
        .client("cloudformation", endpoint_url=local_endpoint.url)
        .describe_stacks(StackName=described["StackId"])["Stacks"]
    )
    assert [found["StackName"] for found in by_id] == ["ops-a"]


def test_a_name_no_stack_has_is_the_services_validation_error(local_endpoint: LocalEndpoint) -> None:
    client = _session().client("cloudformation", endpoint_url=local_endpoint.url)

    with pytest.raises(ClientError) as raised:
        client.describe_stacks(StackName="no-such-stack")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == "Stack with id no-such-stack does not exist"
    with pytest.raises(StackError, match="no stack no-such-stack"):
        find_stack("no-such-stack", local_endpoint.url, _session())
