"""The local cloud's IAM evaluator, case by case against the IAM User Guide's evaluation rules."""

from __future__ import annotations

from typing import Any

import pytest
from batchrecs_local.iam.policy import Decision, Principal, Request, UnsupportedPolicy, authorize, evaluate

ROLE = Principal(arn="arn:aws:iam::123456789012:role/fn", account="123456789012")
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
BUCKET = "arn:aws:s3:::data"


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: str, resource: str = "*", **condition: dict[str, Any]) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, "Condition": condition}


PLANNER = _policy(
    {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": TABLE},
    {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": BUCKET,
        "Condition": {"StringLike": {"s3:prefix": ["output/*"]}},
    },
)


def test_a_missing_action_is_denied() -> None:
    # Given the planner's old policy, which allows GetItem and PutItem on the jobs table
    # When it calls UpdateItem on that table
    decision = authorize(Request("dynamodb:UpdateItem", TABLE), ROLE, [PLANNER])
    # Then no statement allows it
    assert decision is Decision.IMPLICIT_DENY
    assert authorize(Request("dynamodb:PutItem", TABLE), ROLE, [PLANNER]) is Decision.ALLOW


def test_a_resource_outside_the_arn_is_denied() -> None:
    other_table = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs-archive"
    assert authorize(Request("dynamodb:GetItem", other_table), ROLE, [PLANNER]) is Decision.IMPLICIT_DENY
    index = f"{TABLE}/index/inflight-index"  # an index is a resource of its own
    assert authorize(Request("dynamodb:GetItem", index), ROLE, [PLANNER]) is Decision.IMPLICIT_DENY


def test_a_failed_condition_is_denied() -> None:
    allowed = Request("s3:ListBucket", BUCKET, {"s3:prefix": "output/home/job/"})
    outside = Request("s3:ListBucket", BUCKET, {"s3:prefix": "input/home/"})
    without = Request("s3:ListBucket", BUCKET, {})  # a key missing from the request fails StringLike
    assert authorize(allowed, ROLE, [PLANNER]) is Decision.ALLOW
    assert authorize(outside, ROLE, [PLANNER]) is Decision.IMPLICIT_DENY
    assert authorize(without, ROLE, [PLANNER]) is Decision.IMPLICIT_DENY


def test_an_explicit_deny_in_the_resource_policy_wins_over_an_allow() -> None:
    identity = _policy({"Effect": "Allow", "Action": "s3:*", "Resource": f"{BUCKET}/*"})
    tls_only = _policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": f"{BUCKET}/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    plain = Request("s3:GetObject", f"{BUCKET}/x", {"aws:SecureTransport": "false"})
    tls = Request("s3:GetObject", f"{BUCKET}/x", {"aws:SecureTransport": "true"})
    assert authorize(plain, ROLE, [identity], tls_only) is Decision.EXPLICIT_DENY
    assert authorize(tls, ROLE, [identity], tls_only) is Decision.ALLOW


def test_actions_match_case_insensitively_with_wildcards_and_not_action() -> None:
    policy = _policy(
        {"Effect": "Allow", "Action": "DynamoDB:Get*", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "*"},
    )
    assert evaluate(policy, Request("dynamodb:GetItem", TABLE)) is Decision.ALLOW
    assert evaluate(policy, Request("dynamodb:DeleteItem", TABLE)) is Decision.IMPLICIT_DENY
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/x")) is Decision.ALLOW


def test_a_resource_wildcard_stays_case_sensitive() -> None:
    policy = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/staged/*"})
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/staged/a/b.jsonl")) is Decision.ALLOW
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/Staged/a")) is Decision.IMPLICIT_DENY


def test_arn_like_matches_each_part_of_the_arn_on_its_own() -> None:
    policy = _policy(
        _allow("sts:AssumeRole", ArnLike={"aws:SourceArn": "arn:aws:personalize:*:123456789012:batch-*"})
    )
    ours = "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/home-1"
    theirs = "arn:aws:personalize:us-east-1:999999999999:batch-inference-job/home-1"
    assert evaluate(policy, Request("sts:AssumeRole", "*", {"aws:SourceArn": ours})) is Decision.ALLOW
    assert (
        evaluate(policy, Request("sts:AssumeRole", "*", {"aws:SourceArn": theirs})) is Decision.IMPLICIT_DENY
    )
    # a wildcard does not reach across a colon: "*" in the region part cannot swallow the account
    sneaky = "arn:aws:personalize:us-east-1:x:123456789012:batch-y"
    assert (
        evaluate(policy, Request("sts:AssumeRole", "*", {"aws:SourceArn": sneaky})) is Decision.IMPLICIT_DENY
    )


def test_missing_keys_make_negated_and_if_exists_operators_true() -> None:
    policy = _policy(
        _allow(
            "s3:GetObject",
            StringNotEquals={"aws:SourceAccount": "999999999999"},
            StringEqualsIfExists={"s3:prefix": "staged/"},
        )
    )
    assert evaluate(policy, Request("s3:GetObject", f"{BUCKET}/x")) is Decision.ALLOW
    other = Request("s3:GetObject", f"{BUCKET}/x", {"aws:SourceAccount": "999999999999"})
    assert evaluate(policy, other) is Decision.IMPLICIT_DENY


def test_pass_role_needs_the_passed_to_service_condition() -> None:
    role = "arn:aws:iam::123456789012:role/personalize"
    policy = _policy(
        _allow("iam:PassRole", role, StringEquals={"iam:PassedToService": "personalize.amazonaws.com"})
    )
    to_personalize = Request("iam:PassRole", role, {"iam:PassedToService": "personalize.amazonaws.com"})
    to_lambda = Request("iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"})
    assert evaluate(policy, to_personalize) is Decision.ALLOW
    assert evaluate(policy, to_lambda) is Decision.IMPLICIT_DENY


def test_a_resource_policy_applies_only_to_the_principals_it_names() -> None:
    bucket_policy = _policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "personalize.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET}/staged/*",
        }
    )
    request = Request("s3:GetObject", f"{BUCKET}/staged/x")
    personalize = Principal(service="personalize.amazonaws.com")
    ses = Principal(service="ses.amazonaws.com")
    assert authorize(request, personalize, [], bucket_policy) is Decision.ALLOW
    assert authorize(request, ses, [], bucket_policy) is Decision.IMPLICIT_DENY
    account_root = _policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    )
    # the account as principal delegates to IAM: the role's own policy decides ("AWS JSON policy elements:
    # Principal"; a key policy's root statement "enables IAM policies", AWS KMS developer guide)
    decrypt = Request("kms:Decrypt", "*")
    assert authorize(decrypt, ROLE, [], account_root) is Decision.IMPLICIT_DENY
    may_decrypt = _policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    assert authorize(decrypt, ROLE, [may_decrypt], account_root) is Decision.ALLOW
    assert authorize(decrypt, personalize, [], account_root) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"DateLessThan": {"aws:x": "1"}}},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"ForAnyValue:StringLike": {}}},
        {"Effect": "Allow", "Action": "s3:*"},  # an identity statement without Resource
        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Unknown": 1},
    ],
)
def test_what_it_cannot_judge_raises_instead_of_allowing(statement: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(_policy(statement), Request("s3:GetObject", f"{BUCKET}/x"))
