"""What an AWS API request asks IAM for: its actions, resource ARNs and condition keys.

Read from the request as it arrives at the local endpoint (the wire protocol botocore speaks), following
the Service Authorization Reference's tables for the operations batchrecs and its tests use. An
operation of a function's that is not modelled here raises ``NotModelled`` (the endpoint answers
AccessDenied with that reason), so a new call fails loudly instead of passing unchecked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session

from batchrecs_local.iam.policy import Request

SECURE = {"aws:SecureTransport": "true"}  # boto3 talks HTTPS to AWS; locally the same requests are plain HTTP


class NotModelled(ValueError):
    """A request whose IAM actions and resources this module does not know."""


@dataclass(frozen=True)
class HttpRequest:
    service: str  # the SigV4 signing name: s3, dynamodb, sqs, events, ses, personalize, sns, ...
    method: str
    path: str  # decoded
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    region: str
    account: str

    @property
    def target(self) -> str:
        return self.headers.get("x-amz-target", "").rsplit(".", 1)[-1]

    def json(self) -> dict[str, Any]:
        return json.loads(self.body or b"{}")

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


def requests_for(http: HttpRequest) -> list[Request]:
    classify = _SERVICES.get(http.service)
    if classify is None:
        raise NotModelled(f"service {http.service!r} is not modelled by the local IAM check")
    return [Request(action, resource, {**SECURE, **context}) for action, resource, context in classify(http)]


Authz = tuple[str, str, dict[str, str]]


# ------------------------------------------------------------------ S3 (REST-XML, path-style)


def _s3(http: HttpRequest) -> list[Authz]:
    bucket, _, key = http.path.lstrip("/").partition("/")
    if not bucket:
        return [("s3:ListAllMyBuckets", "*", {})]
    bucket_arn, object_arn = f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{key}"
    q, method = http.query, http.method
    if not key:
        if method in ("GET", "HEAD") and not (
            set(q)
            - {
                "list-type",
                "prefix",
                "delimiter",
                "continuation-token",
                "max-keys",
                "start-after",
                "encoding-type",
                "fetch-owner",
                "marker",
            }
        ):
            return [("s3:ListBucket", bucket_arn, {"s3:prefix": q.get("prefix", [""])[0]})]
        if method == "GET" and "versions" in q:
            return [("s3:ListBucketVersions", bucket_arn, {"s3:prefix": q.get("prefix", [""])[0]})]
        if method == "GET" and "location" in q:
            return [("s3:GetBucketLocation", bucket_arn, {})]
        raise NotModelled(f"S3 {method} /{bucket}?{'&'.join(q)}")
    if method in ("GET", "HEAD") and not q.keys() - {"versionId", "partNumber", "response-content-type"}:
        action = "s3:GetObjectVersion" if "versionId" in q else "s3:GetObject"
        return [(action, object_arn, {})]
    if method == "DELETE" and "uploadId" in q:
        return [("s3:AbortMultipartUpload", object_arn, {})]
    if method == "DELETE" and not q:
        return [("s3:DeleteObject", object_arn, {})]
    if method == "GET" and "uploadId" in q:
        return [("s3:ListMultipartUploadParts", object_arn, {})]
    if method in ("PUT", "POST") and (not q.keys() - {"uploads", "uploadId", "partNumber", "x-id"}):
        # PutObject, CopyObject, Create/Complete multipart upload and UploadPart all need s3:PutObject
        needs: list[Authz] = [("s3:PutObject", object_arn, {})]
        source = http.headers.get("x-amz-copy-source")
        if source:
            source_bucket, _, source_key = unquote(source.split("?")[0]).lstrip("/").partition("/")
            needs.append(("s3:GetObject", f"arn:aws:s3:::{source_bucket}/{source_key}", {}))
        return needs
    raise NotModelled(f"S3 {method} /{bucket}/…?{'&'.join(q)}")


# ------------------------------------------------------------------ DynamoDB (JSON 1.0)


def _dynamodb(http: HttpRequest) -> list[Authz]:
    operation, body = http.target, http.json()
    table = f"arn:aws:dynamodb:{http.region}:{http.account}:table/"
    if operation in ("BatchWriteItem", "BatchGetItem"):
        return [(f"dynamodb:{operation}", table + name, {}) for name in body.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        needs: list[Authz] = []
        for entry in body.get("TransactItems", []):
            for kind, spec in entry.items():
                action = {
                    "Put": "PutItem",
                    "Update": "UpdateItem",
                    "Delete": "DeleteItem",
                    "ConditionCheck": "ConditionCheckItem",
                    "Get": "GetItem",
                }[kind]
                needs.append((f"dynamodb:{action}", table + spec["TableName"], {}))
        return needs
    if operation in ("ListTables", "DescribeLimits", "DescribeEndpoints"):
        return [(f"dynamodb:{operation}", "*", {})]
    if "TableName" not in body:
        raise NotModelled(f"DynamoDB {operation} without TableName")
    resource = table + body["TableName"]
    if body.get("IndexName"):
        resource += f"/index/{body['IndexName']}"
    return [(f"dynamodb:{operation}", resource, {})]


# ------------------------------------------------------------------ SQS (JSON, or the query protocol)

_SQS_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(http: HttpRequest) -> list[Authz]:
    if http.target:
        operation, body = http.target, http.json()
    else:
        body = http.form()
        operation = body.get("Action", "")
    action = "sqs:" + _SQS_ACTIONS.get(operation, operation)
    if operation == "ListQueues":
        return [(action, "*", {})]
    name = body.get("QueueName") or str(body.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise NotModelled(f"SQS {operation} without a queue")
    return [(action, f"arn:aws:sqs:{http.region}:{http.account}:{name}", {})]


# ------------------------------------------------------------------ EventBridge (JSON 1.1)


def _events(http: HttpRequest) -> list[Authz]:
    operation, body = http.target, http.json()
    bus = f"arn:aws:events:{http.region}:{http.account}:event-bus/"
    if operation == "PutEvents":
        buses = {entry.get("EventBusName") or "default" for entry in body.get("Entries", [])}
        return [("events:PutEvents", name if name.startswith("arn:") else bus + name, {}) for name in buses]
    name = body.get("EventBusName") or "default"
    return [(f"events:{operation}", name if name.startswith("arn:") else bus + name, {})]


# ------------------------------------------------------------------ Personalize (JSON 1.1)

_PERSONALIZE_JOBS = {
    "CreateBatchInferenceJob": "batch-inference-job",
    "CreateBatchSegmentJob": "batch-segment-job",
    "CreateDatasetImportJob": "dataset-import-job",
}
_PERSONALIZE_ARNS = (
    "batchInferenceJobArn",
    "batchSegmentJobArn",
    "datasetImportJobArn",
    "solutionVersionArn",
    "solutionArn",
)


def _personalize(http: HttpRequest) -> list[Authz]:
    operation, body = http.target, http.json()
    action = f"personalize:{operation}"
    if operation in _PERSONALIZE_JOBS:
        # Service Authorization Reference: Create* authorizes the new job's ARN and, for the service role,
        # iam:PassRole with iam:PassedToService = personalize.amazonaws.com.
        kind, name = _PERSONALIZE_JOBS[operation], body.get("jobName", "")
        job = f"arn:aws:personalize:{http.region}:{http.account}:{kind}/{name}"
        needs: list[Authz] = [(action, job, {})]
        if body.get("tags"):  # tagging on create is authorized as TagResource on the new resource too
            needs.append(("personalize:TagResource", job, {}))
        if body.get("roleArn"):
            needs.append(
                ("iam:PassRole", body["roleArn"], {"iam:PassedToService": "personalize.amazonaws.com"})
            )
        return needs
    if operation.startswith("List"):
        return [(action, "*", {})]
    arn = next((body[name] for name in _PERSONALIZE_ARNS if body.get(name)), None)
    if arn is None:
        raise NotModelled(f"Personalize {operation}")
    return [(action, arn, {})]


# ------------------------------------------------------------------ SNS (query protocol)


def _sns(http: HttpRequest) -> list[Authz]:
    body = http.form()
    operation = body.get("Action", "")
    topic = body.get("TopicArn") or body.get("TargetArn")
    return [(f"sns:{operation}", topic or "*", {})]


# ------------------------------------------------------------------ SES v2 (REST-JSON)


def _ses(http: HttpRequest) -> list[Authz]:
    for method, pattern, operation in _sesv2_routes():
        match = pattern.fullmatch(http.path)
        if method == http.method and match:
            contact_list = match.groupdict().get("ContactListName")
            if contact_list:  # contact-list operations are authorized on the list's ARN
                return [
                    (
                        f"ses:{operation}",
                        f"arn:aws:ses:{http.region}:{http.account}:contact-list/{contact_list}",
                        {},
                    )
                ]
            return [(f"ses:{operation}", "*", {})]  # import jobs have no resource type to scope to
    raise NotModelled(f"SES {http.method} {http.path}")


def _sesv2_routes() -> list[tuple[str, re.Pattern[str], str]]:
    return _rest_routes("sesv2")


@lru_cache(maxsize=4)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation) from botocore's model of a REST-JSON service, longest literal
    paths first."""
    model = botocore.session.get_session().get_service_model(service)
    routes = []
    for name in model.operation_names:
        http = model.operation_model(name).http
        path = http["requestUri"].split("?")[0]
        regex = re.sub(r"\\\{(\w+)(?:\\\+)?\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        routes.append((http["method"], re.compile(regex), name))
    routes.sort(key=lambda route: route[1].pattern.count("(?P"))
    return routes


def _scheduler(http: HttpRequest) -> list[Authz]:
    """EventBridge Scheduler: a schedule's actions on ``schedule/<group>/<name>`` (the group from the
    body or the ``groupName`` query, "default" without one), creating or updating one also passes its
    target's role to scheduler.amazonaws.com; ListSchedules has no resource type."""
    for method, pattern, operation in _rest_routes("scheduler"):
        match = pattern.fullmatch(http.path)
        if method != http.method or not match:
            continue
        action, name = f"scheduler:{operation}", match.groupdict().get("Name")
        if operation.endswith("ScheduleGroup") and name:
            return [(action, f"arn:aws:scheduler:{http.region}:{http.account}:schedule-group/{name}", {})]
        if not name:
            return [(action, "*", {})]
        body = http.json() if http.body else {}
        group = body.get("GroupName") or (http.query.get("groupName") or ["default"])[0]
        needs: list[Authz] = [
            (action, f"arn:aws:scheduler:{http.region}:{http.account}:schedule/{group}/{name}", {})
        ]
        role = (body.get("Target") or {}).get("RoleArn")
        if role:
            needs.append(("iam:PassRole", role, {"iam:PassedToService": "scheduler.amazonaws.com"}))
        return needs
    raise NotModelled(f"Scheduler {http.method} {http.path}")


def _sts(http: HttpRequest) -> list[Authz]:
    return [("sts:GetCallerIdentity", "*", {})]


_SERVICES = {
    "s3": _s3,
    "dynamodb": _dynamodb,
    "sqs": _sqs,
    "events": _events,
    "personalize": _personalize,
    "sns": _sns,
    "ses": _ses,
    "scheduler": _scheduler,
    "sts": _sts,
}
