"""What template.yaml lets each function and each AWS service do, judged by the local IAM evaluator.

The template is SAM-translated and resolved (no resources are created); each test asks the same questions
AWS would ask when the deployed stack runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from batchrecs_local import stack as local_stack
from batchrecs_local.iam import Authorizer
from batchrecs_local.iam.identity import function_key
from batchrecs_local.iam.policy import Decision, Principal, Request, authorize
from batchrecs_local.iam.requests import HttpRequest

from tests.conftest import ROOT

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::batchrecs-databucket"
JOBS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/batchrecs-jobstable"
JOB_ARN = f"arn:aws:personalize:us-east-1:{ACCOUNT}:batch-inference-job/home-users-1"
PARAMETERS = {
    name: f"arn:aws:personalize:us-east-1:{ACCOUNT}:solution/{name.lower()}/v1"
    for name in (
        "UserPersonalizationSolutionVersionArn",
        "RelatedItemsSolutionVersionArn",
        "PersonalizedRankingSolutionVersionArn",
        "ItemAffinitySolutionVersionArn",
        "ItemAttributeAffinitySolutionVersionArn",
    )
}


def _granted(template: Path | None = None) -> tuple[Authorizer, local_stack.Stack]:
    iam = Authorizer(ACCOUNT)
    stack = local_stack.grant_template_permissions(
        iam, PARAMETERS, {}, {}, stack_name="batchrecs", template=template
    )
    return iam, stack


@pytest.fixture(scope="module")
def granted() -> tuple[Authorizer, local_stack.Stack]:
    return _granted()


def _dynamodb(operation: str, table: str = "batchrecs-jobstable") -> HttpRequest:
    return HttpRequest(
        "dynamodb",
        "POST",
        "/",
        {},
        {"x-amz-target": f"DynamoDB_20120810.{operation}"},
        f'{{"TableName": "{table}"}}'.encode(),
        "us-east-1",
        ACCOUNT,
    )


def test_the_planner_may_update_the_job_it_plans(granted: tuple[Authorizer, local_stack.Stack]) -> None:
    # Given the template's planner role; When it records its chunk total (UpdateItem) - Then AWS allows it
    iam, _ = granted
    assert iam.check(function_key("ExportPlannerFunction"), _dynamodb("UpdateItem")) is None
    # and a table it has no business with stays out of reach
    denial = iam.check(
        function_key("ExportPlannerFunction"), _dynamodb("UpdateItem", "batchrecs-recommendationstable")
    )
    assert denial is not None and "dynamodb:UpdateItem" in denial.message()


def test_the_submit_function_may_not_delete_jobs(granted: tuple[Authorizer, local_stack.Stack]) -> None:
    iam, _ = granted
    denial = iam.check(function_key("SubmitFunction"), _dynamodb("DeleteItem"))
    assert denial is not None
    assert denial.message() == (
        "User: arn:aws:sts::123456789012:assumed-role/batchrecs-submitfunctionrole/batchrecs-submitfunction "
        "is not authorized to perform: dynamodb:DeleteItem on resource: "
        f"{JOBS} because no identity-based policy allows the action"
    )


def _personalize(iam: Authorizer, action: str, key: str, source_arn: str = JOB_ARN) -> str | None:
    role = f"arn:aws:iam::{ACCOUNT}:role/batchrecs-personalizeservicerole"
    source = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": source_arn}
    denial = iam.check_service(
        "personalize.amazonaws.com", role, [Request(action, f"{BUCKET}/{key}")], source
    )
    return None if denial is None else denial.message()


def test_personalize_reads_staged_and_writes_output_for_this_accounts_jobs_only(
    granted: tuple[Authorizer, local_stack.Stack],
) -> None:
    iam, _ = granted
    assert _personalize(iam, "s3:GetObject", "staged/home/j/users.jsonl") is None
    assert _personalize(iam, "s3:PutObject", "output/home/j/users.jsonl.out") is None
    assert _personalize(iam, "s3:GetObject", "input/home/users.jsonl") is not None  # uploads stay private
    assert _personalize(iam, "s3:PutObject", "staged/home/j/x") is not None
    theirs = "arn:aws:personalize:us-east-1:999999999999:batch-inference-job/x"
    assert "trust policy" in str(_personalize(iam, "s3:GetObject", "staged/home/j/users.jsonl", theirs))


def test_ses_reads_only_the_import_files(granted: tuple[Authorizer, local_stack.Stack]) -> None:
    iam, _ = granted
    source = {"aws:SourceAccount": ACCOUNT, "aws:SourceArn": f"arn:aws:ses:us-east-1:{ACCOUNT}:import-job/1"}

    def read(key: str) -> object:
        return iam.check_service(
            "ses.amazonaws.com", None, [Request("s3:GetObject", f"{BUCKET}/{key}")], source
        )

    assert read("ses-imports/j/contacts-0001.jsonl") is None
    assert read("exports/j/contacts/0.jsonl") is not None


def test_the_alert_rule_and_the_alarms_can_publish_to_the_encrypted_alert_topic(
    granted: tuple[Authorizer, local_stack.Stack],
) -> None:
    # Given the alert topic, encrypted with the stack's own key
    iam, stack = granted
    [(topic, key)] = stack.topic_keys.items()
    assert key.startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/")
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/batchrecs-bus/batchrecs-jobfailurealertrule"
    alarm = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:batchrecs-FailedEventsAlarm-1ABC"
    # Then EventBridge (for the rule) and CloudWatch (for an alarm of the stack) may publish, key included
    assert local_stack.publish_denial(iam, stack, "events.amazonaws.com", topic, rule) is None
    assert local_stack.publish_denial(iam, stack, "cloudwatch.amazonaws.com", topic, alarm) is None
    # and an alarm of another stack may not
    other = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:someone-else"
    assert local_stack.publish_denial(iam, stack, "cloudwatch.amazonaws.com", topic, other) is not None


def test_an_aws_managed_topic_key_makes_every_alert_undeliverable(tmp_path: Path) -> None:
    # Given the template as it was: the alert topic encrypted with alias/aws/sns
    template = tmp_path / "template.yaml"
    template.write_text(
        (ROOT / "template.yaml")
        .read_text()
        .replace("KmsMasterKeyId: !Ref AlertTopicKey", "KmsMasterKeyId: alias/aws/sns")
    )
    iam, stack = _granted(template)
    [(topic, key)] = stack.topic_keys.items()
    assert key == f"arn:aws:kms:us-east-1:{ACCOUNT}:alias/aws/sns"
    rule = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/batchrecs-bus/batchrecs-jobfailurealertrule"
    # Then neither EventBridge nor CloudWatch can use the key: AWS's managed key policy grants no service
    reason = local_stack.publish_denial(iam, stack, "events.amazonaws.com", topic, rule)
    assert reason is not None and "kms:GenerateDataKey" in reason
    assert local_stack.publish_denial(iam, stack, "cloudwatch.amazonaws.com", topic, rule) is not None


def test_the_chunks_queue_refuses_plain_http(granted: tuple[Authorizer, local_stack.Stack]) -> None:
    # Given the planner's role, which may send chunks, and the queue's TLS-only policy
    iam, _ = granted
    role = iam.role(f"arn:aws:iam::{ACCOUNT}:role/batchrecs-exportplannerfunctionrole")
    assert role is not None
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:batchrecs-chunks.fifo"
    policy = iam.resource_policy(queue)
    assert policy is not None
    planner = Principal(arn=role.arn, account=ACCOUNT)

    def send(secure: str) -> Decision:
        request = Request("sqs:SendMessage", queue, {"aws:SecureTransport": secure})
        return authorize(request, planner, role.policies, policy)

    # Then over TLS it may send, and over plain HTTP it is explicitly denied
    assert send("true") is Decision.ALLOW
    assert send("false") is Decision.EXPLICIT_DENY


def test_each_function_may_be_invoked_only_by_its_own_rule(
    granted: tuple[Authorizer, local_stack.Stack],
) -> None:
    # Given the permissions SAM adds for the functions' EventBridge rules and schedule
    iam, _ = granted
    rules = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/"

    def invoke(function: str, rule: str) -> object:
        request = Request("lambda:InvokeFunction", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}")
        return iam.check_service("events.amazonaws.com", None, [request], {"aws:SourceArn": rules + rule})

    # Then the planner takes events from its rule on the stack's bus, the monitor from its schedule
    assert (
        invoke("batchrecs-exportplannerfunction", "batchrecs-bus/batchrecs-exportplannerfunctionjobactive")
        is None
    )
    assert invoke("batchrecs-monitorfunction", "batchrecs-monitorfunctiontick") is None
    # and not from another rule
    assert invoke("batchrecs-exportplannerfunction", "batchrecs-monitorfunctiontick") is not None
