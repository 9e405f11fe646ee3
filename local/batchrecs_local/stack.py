"""Create what template.yaml declares on the local endpoint.

The template is SAM-translated (the same transform CloudFormation runs), its intrinsics resolved to
local names, and each resource created in moto. Wiring stays the template's: an EventBridge rule is
put with the template's own pattern, so moto's matcher decides what reaches a function; a rule target
that is a function becomes a delivery queue the local runtime polls (retries and the dead-letter
queue follow the template's settings). Schedules are ticked by the runtime.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import intrinsics_multi_constructor

from batchrecs_local import cache
from batchrecs_local.endpoint import ACCOUNT, REGION, LocalEndpoint
from batchrecs_local.iam import Authorizer, Role
from batchrecs_local.iam.identity import function_key
from batchrecs_local.iam.policy import Request
from batchrecs_local.project import find_template

LAYER_MOUNT = "/opt/python/"
LOCAL_CODE_BUCKET = "local-code"
LOCAL_VISIBILITY_CAP = 5  # seconds: a failed message comes back quickly instead of after hours
LOCAL_CONCURRENCY_CAP = 4
# The AWS managed policies SAM attaches to function roles, as AWS publishes them (IAM console, "AWS managed
# policies"); the local IAM check needs their statements, and a managed policy not listed here is an error.
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": [
        {
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            "Resource": "*",
        }
    ],
}


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    environment: dict[str, str]
    max_retries: int = 2


@dataclass
class Delivery:
    """Events of one rule for one function, arriving on a queue the runtime polls."""

    function: str
    rule: str
    queue_url: str
    on_failure_url: str | None = None  # where a failed invocation's record goes after its retries
    attempts: int = 3  # 1 + the function's MaximumRetryAttempts


@dataclass
class QueueSource:
    """An SQS event source mapping: the runtime polls the queue and invokes with batches."""

    function: str
    queue_url: str
    queue_arn: str
    batch_size: int
    concurrency: int
    report_failures: bool


@dataclass
class Schedule:
    function: str
    rule: str
    expression: str


@dataclass
class Stack:
    name: str
    physical: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    topic_queues: dict[str, str] = field(default_factory=dict)  # SNS topic ARN -> stand-in queue URL
    queue_sources: list[QueueSource] = field(default_factory=list)
    # notifications AWS would not deliver (a rule's or an alarm's target its policies do not let in)
    undeliverable: list[str] = field(default_factory=list)
    # SES configuration set -> the event bus its Subscription events go to
    subscription_events: dict[str, str] = field(default_factory=dict)
    topic_keys: dict[str, str] = field(default_factory=dict)  # encrypted SNS topic ARN -> its KMS key ARN


class _Name:
    def __init__(self, stack: str) -> None:
        self.stack = stack

    def __call__(self, logical_id: str) -> str:
        return re.sub(r"[^a-z0-9-]", "-", f"{self.stack}-{logical_id}".lower())[:63]


def deploy(
    endpoint: LocalEndpoint,
    parameters: dict[str, str],
    stack_name: str = "batchrecs-local",
    template: Path | None = None,
) -> Stack:
    """Translate ``template`` (default: ``find_template()``) and create its resources on ``endpoint``."""
    template = template or find_template()
    stack = Stack(stack_name)
    resolver, resources = resolve_template(parameters, stack_name, template)
    creators = {
        "AWS::S3::Bucket": _create_bucket,
        "AWS::DynamoDB::Table": _create_table,
        "AWS::SQS::Queue": _create_queue,
        "AWS::SNS::Topic": _create_topic,
        "AWS::Events::EventBus": _create_bus,
        "AWS::SES::ContactList": _create_contact_list,
        "AWS::Scheduler::ScheduleGroup": _create_schedule_group,
    }
    # dependencies first: buckets, tables, queues (dead-letter queues before the queues using them)...
    ordered = sorted(resources.items(), key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}))
    for resource_type, create in creators.items():
        for logical_id, resource in ordered:
            if resource["Type"] == resource_type:
                create(endpoint, resolver, logical_id, resource.get("Properties", {}))
    retries = {
        resolver.ref(props["FunctionName"]): props.get("MaximumRetryAttempts", 2)
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::EventInvokeConfig"
        for props in [resource["Properties"]]
    }
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            stack.functions[logical_id] = _function(
                resolver, logical_id, resource["Properties"], retries, template.parent
            )
    _register_permissions(endpoint.iam, resolver, resources, stack)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Events::Rule":
            _create_rule(endpoint, resolver, stack, logical_id, resource["Properties"])
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            _queue_source(resolver, stack, resource["Properties"])
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::SES::ConfigurationSetEventDestination":
            _subscription_events(resolver, stack, logical_id, resource["Properties"])
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            _check_alarm_actions(endpoint.iam, resolver, stack, logical_id, resource["Properties"])
    stack.physical = dict(resolver.physical)
    stack.outputs = {
        name: str(resolver.resolve(out["Value"]))
        for name, out in _shared(template).get("Outputs", {}).items()
    }
    return stack


def grant_template_permissions(
    iam: Authorizer,
    parameters: dict[str, str],
    physical: dict[str, str],
    queue_urls: dict[str, str],
    stack_name: str = "batchrecs",
    template: Path | None = None,
) -> Stack:
    """The template's roles and resource policies on ``iam``, for resources created under other names.

    For tests that build the stack's resources themselves: ``physical`` maps logical ids to their names
    there (``queue_urls`` for queues). Returns the stack's functions and encrypted topics (nothing is
    created); each function signs as ``identity.function_key(logical_id)``.
    """
    template = template or find_template()
    stack = Stack(stack_name)
    resolver, resources = resolve_template(parameters, stack_name, template)
    resolver.physical.update(physical)
    resolver.queue_urls.update(queue_urls)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            stack.functions[logical_id] = _function(
                resolver, logical_id, resource["Properties"], {}, template.parent
            )
    _register_permissions(iam, resolver, resources, stack)
    return stack


def resolve_template(
    parameters: dict[str, str], stack_name: str, template: Path | None = None
) -> tuple[_Resolver, dict[str, Any]]:
    """The translated template's resolver and the resources its conditions keep."""
    template = template or find_template()
    declared = _shared(template).get("Parameters", {})
    missing = [name for name, spec in declared.items() if name not in parameters and "Default" not in spec]
    if missing:
        raise ValueError(f"template parameters without a value: {', '.join(missing)}")
    parameters = {
        **{name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec},
        **parameters,
    }
    for name, spec in declared.items():  # as CloudFormation checks them before it creates anything
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(pattern, parameters[name]) is None:
            allowed = spec.get("ConstraintDescription") or f"a value matching {pattern}"
            raise ValueError(f"parameter {name} is {parameters[name]!r}, expected {allowed}")
    translated = _translate(read_template(template), parameters)
    resolver = _Resolver(translated["Resources"], parameters, _Name(stack_name), stack_name)
    for name, condition in translated.get("Conditions", {}).items():
        value = resolver.resolve(condition)
        if not isinstance(value, bool):  # an intrinsic not resolved here must not read as true
            raise ValueError(f"condition {name} is not resolved locally: {value!r}")
        resolver.conditions[name] = value
    for name, rule in translated.get("Rules", {}).items():
        for assertion in rule.get("Assertions", []):
            if resolver.resolve(assertion["Assert"]) is not True:
                raise ValueError(f"rule {name}: {assertion.get('AssertDescription', 'assertion failed')}")
    resources = {
        logical_id: resource
        for logical_id, resource in translated["Resources"].items()
        if resolver.conditions.get(resource.get("Condition", ""), True)
    }
    return resolver, resources


def read_template(template: Path) -> dict[str, Any]:
    """The template, parsed with CloudFormation's short intrinsics (``!Ref``...): a copy of what was
    parsed for this version of the file (libyaml parses it in 10 ms, pure-Python PyYAML in 90 ms)."""
    return copy.deepcopy(_shared(template))


def _shared(template: Path) -> dict[str, Any]:
    """The parsed template itself, not a copy: only for reading (a deep copy is 16 ms)."""
    stat = template.stat()
    return _parsed(str(template), stat.st_mtime_ns, stat.st_size)


class _TemplateLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    pass


_TemplateLoader.add_multi_constructor("!", intrinsics_multi_constructor)


@functools.lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.load(Path(path).read_text(), Loader=_TemplateLoader)  # noqa: S506 - safe
    return parsed


def _translate(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{LOCAL_CODE_BUCKET}/{props[key]}"
    key = hashlib.sha256(
        json.dumps([template, parameters, _translator_version()], sort_keys=True, default=str).encode()
    ).hexdigest()
    name = f"sam-{key[:32]}.json"
    try:
        translated: dict[str, Any] = json.loads(cache.read(name) or b"")
        return translated
    except ValueError:  # not translated yet (or a file cut short): translate it
        pass
    from samtranslator.translator.transform import transform  # 0.2 s to import: only when needed

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    translated = dict(transform(template, dict(parameters), NoManagedPolicies()))
    cache.keep(name, json.dumps(translated, default=str).encode())
    return translated


def _translator_version() -> str:
    return importlib.metadata.version("aws-sam-translator")


_NAME_PROPERTIES = {
    "AWS::Events::EventBus": ("Name",),
    "AWS::SQS::Queue": ("QueueName",),
    "AWS::SES::ContactList": ("ContactListName",),
    "AWS::SES::ConfigurationSet": ("Name",),
    "AWS::Scheduler::ScheduleGroup": ("Name",),
}


_NO_VALUE = object()  # what Ref AWS::NoValue resolves to, before its container drops it


class _Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join to local physical names and ARNs."""

    def __init__(
        self, resources: dict[str, Any], parameters: dict[str, str], name: _Name, stack: str
    ) -> None:
        self._resources = resources
        self._parameters = parameters
        self._name = name
        self._pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.physical: dict[str, str] = {}
        self.queue_urls: dict[str, str] = {}
        self.conditions: dict[str, bool] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(part)) for part in parts)
            if key == "Fn::Split":
                separator, text = arg
                return str(self.resolve(text)).split(separator)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::Equals":
                left, right = arg
                return str(self.resolve(left)) == str(self.resolve(right))
            if key == "Fn::Not":
                (condition,) = arg
                return not self.resolve(condition)
            if key == "Fn::Or":
                return any(self.resolve(condition) is True for condition in arg)
            if key == "Fn::And":
                return all(self.resolve(condition) is True for condition in arg)
            if key == "Fn::If":
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.conditions[condition] else when_false)
        if isinstance(value, dict):  # AWS::NoValue removes the property or list item it stands for
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not _NO_VALUE}
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not _NO_VALUE]
        return value

    def ref(self, name: Any) -> str:
        if isinstance(name, dict):
            return str(self.resolve(name))
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._parameters:
            return self._parameters[name]
        resource = self._resources[name]
        kind = resource["Type"]
        physical = self.physical.get(name) or self.name_of(name)
        if kind == "AWS::SQS::Queue":
            return self.queue_urls.get(name, physical)
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{REGION}:{ACCOUNT}:{physical}"
        if kind == "AWS::KMS::Key":  # a key's Ref is its id
            return f"local-key-{physical}"
        return physical

    def name_of(self, logical: str) -> str:
        """A resource's physical name: the one its properties declare, or one made from its logical id."""
        properties = self._resources[logical].get("Properties", {})
        for declared in _NAME_PROPERTIES.get(self._resources[logical]["Type"], ()):
            if declared in properties:
                return str(self.resolve(properties[declared]))
        return self._name(logical)

    def get_att(self, logical: str, attribute: str) -> str:
        kind = self._resources[logical]["Type"]
        physical = self.physical.get(logical) or self.name_of(logical)
        service = {
            "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}",
            "AWS::Events::EventBus": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{physical}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{physical}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/local-key-{physical}",
        }
        if kind == "AWS::Events::Rule" and attribute == "Arn":  # a rule of a custom bus: rule/<bus>/<name>
            bus = self.resolve(self._resources[logical]["Properties"].get("EventBusName", "default"))
            if bus != "default":
                return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{physical}"
        if attribute in ("Arn", "TopicArn"):
            return service[kind]
        if attribute in ("QueueName", "Name"):
            return physical
        if attribute == "QueueUrl":
            return self.ref(logical)
        raise KeyError(f"Fn::GetAtt {logical}.{attribute} is not resolved locally")

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and not token.startswith("AWS::"):
                return self.get_att(*token.split(".", 1))
            return self.ref(token)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)


def _create_bucket(
    endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> None:
    s3 = endpoint.client("s3")
    name = resolver.ref(logical_id)
    s3.create_bucket(Bucket=name)
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if "BucketEncryption" in props:
        rules = [  # CloudFormation and the S3 API name the default-encryption block differently
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False)),
            }
            for rule in resolver.resolve(props["BucketEncryption"])["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    notifications = props.get("NotificationConfiguration", {})
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )


def _create_contact_list(
    endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> None:
    name = str(resolver.resolve(props["ContactListName"]))
    resolver.physical[logical_id] = name
    endpoint.client("sesv2").create_contact_list(
        ContactListName=name, Description=props.get("Description", ""), Topics=props.get("Topics", [])
    )


def _create_schedule_group(
    endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> None:
    name = str(resolver.resolve(props["Name"]))
    resolver.physical[logical_id] = name
    endpoint.client("scheduler").create_schedule_group(Name=name)


def _subscription_events(resolver: _Resolver, stack: Stack, logical_id: str, props: dict[str, Any]) -> None:
    """An SES event destination that sends Subscription events to EventBridge: SES sends them only to
    the account's default bus (any other is undeliverable)."""
    destination = props["EventDestination"]
    bus_arn = str(resolver.resolve(destination.get("EventBridgeDestination", {}).get("EventBusArn", "")))
    if (
        not bus_arn
        or not destination.get("Enabled")
        or "subscription" not in destination["MatchingEventTypes"]
    ):
        return
    if bus_arn != f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default":
        stack.undeliverable.append(
            f"{logical_id}: SES sends events to the default event bus only, not {bus_arn}"
        )
        return
    stack.subscription_events[str(resolver.resolve(props["ConfigurationSetName"]))] = "default"


def table_request(logical_id: str, name: str, template: Path | None = None) -> dict[str, Any]:
    """CreateTable's arguments for the template's table ``logical_id`` (keys and indexes as deployed)."""
    resources = read_template(template or find_template())["Resources"]
    return _table_request(name, resources[logical_id]["Properties"])


def _table_request(name: str, props: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return request


def _create_table(
    endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> None:
    ddb = endpoint.client("dynamodb")
    name = resolver.ref(logical_id)
    ddb.create_table(**_table_request(name, props))
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )


def _create_queue(
    endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> None:
    attributes = {
        key: json.dumps(resolver.resolve(value)) if isinstance(value, dict) else str(value)
        for key, value in props.items()
        if key in ("MessageRetentionPeriod", "VisibilityTimeout", "RedrivePolicy", "DelaySeconds")
    }
    if int(attributes.get("VisibilityTimeout", 30)) > LOCAL_VISIBILITY_CAP:
        attributes["VisibilityTimeout"] = str(LOCAL_VISIBILITY_CAP)
    name = resolver.name_of(logical_id)
    if str(props.get("FifoQueue", "")).lower() == "true":  # CloudFormation names FIFO queues *.fifo
        attributes["FifoQueue"] = "true"
        name += "" if name.endswith(".fifo") else ".fifo"
    resolver.queue_urls[logical_id] = endpoint.client("sqs").create_queue(
        QueueName=name, Attributes=attributes
    )["QueueUrl"]
    resolver.physical[logical_id] = name


def _queue_arn(name: str) -> str:
    """A queue's ARN, as SQS (and moto) name it: no GetQueueAttributes call to learn it."""
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def _create_topic(
    endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]
) -> None:
    endpoint.client("sns").create_topic(Name=resolver._name(logical_id))


def _create_bus(endpoint: LocalEndpoint, resolver: _Resolver, logical_id: str, props: dict[str, Any]) -> None:
    name = resolver.resolve(props["Name"])
    resolver.physical[logical_id] = name
    endpoint.client("events").create_event_bus(Name=name)


def _function(
    resolver: _Resolver, logical_id: str, props: dict[str, Any], retries: dict[str, int], root: Path
) -> FunctionSpec:
    name = resolver.ref(logical_id)
    environment = {
        key: str(resolver.resolve(value))
        for key, value in props.get("Environment", {}).get("Variables", {}).items()
    }
    for key, value in environment.items():
        if value.startswith(LAYER_MOUNT):  # the layer's files are the package's own folder locally
            environment[key] = str(root / "layers" / "batchrecs" / value.removeprefix(LAYER_MOUNT))
    code = props["Code"]["S3Key"]
    return FunctionSpec(logical_id, name, root / code, props["Handler"], environment, retries.get(name, 2))


def _register_permissions(
    iam: Authorizer, resolver: _Resolver, resources: dict[str, Any], stack: Stack
) -> None:
    """Roles (with the access key of each function using one) and resource policies, resolved."""
    iam.clear()
    function_policies: dict[str, list[dict[str, Any]]] = {}
    role_users: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            role_users.setdefault(role, []).append(logical_id)
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            policies = [policy["PolicyDocument"] for policy in resolver.resolve(props.get("Policies", []))]
            for arn in props.get("ManagedPolicyArns", []):
                if arn not in MANAGED_POLICIES:
                    raise ValueError(
                        f"{logical_id}: managed policy {arn} is not known to the local IAM check"
                    )
                policies.append({"Version": "2012-10-17", "Statement": MANAGED_POLICIES[arn]})
            trust = resolver.resolve(props.get("AssumeRolePolicyDocument"))
            users: list[str | None] = [*role_users.get(logical_id, [])] or [None]
            for user in users:
                role = Role(
                    name=resolver._name(logical_id),
                    arn=resolver.get_att(logical_id, "Arn"),
                    policies=policies,
                    trust=trust,
                    session=stack.functions[user].name if user else "",
                )
                iam.add_role(role, function_key(user) if user else None)
        elif kind == "AWS::S3::Bucket":  # SSE-KMS default encryption: object reads and writes use the key
            for rule in resolver.resolve(props.get("BucketEncryption", {})).get(
                "ServerSideEncryptionConfiguration", []
            ):
                default = rule.get("ServerSideEncryptionByDefault", {})
                if default.get("SSEAlgorithm") == "aws:kms" and default.get("KMSMasterKeyID"):
                    iam.set_bucket_key(resolver.ref(logical_id), str(default["KMSMasterKeyID"]))
        elif kind == "AWS::S3::BucketPolicy":
            bucket = resolver.ref(props["Bucket"]["Ref"])
            iam.set_resource_policy(f"arn:aws:s3:::{bucket}", resolver.resolve(props["PolicyDocument"]))
        elif kind == "AWS::SQS::QueuePolicy":
            for queue in props["Queues"]:
                name = str(resolver.resolve(queue)).rstrip("/").rsplit("/", 1)[-1]
                iam.set_resource_policy(_queue_arn(name), resolver.resolve(props["PolicyDocument"]))
        elif kind == "AWS::SNS::TopicPolicy":
            for topic in props["Topics"]:
                iam.set_resource_policy(
                    str(resolver.resolve(topic)), resolver.resolve(props["PolicyDocument"])
                )
        elif kind == "AWS::Lambda::Permission":  # a statement of the function's resource policy
            function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{resolver.resolve(props['FunctionName'])}"
            statement: dict[str, Any] = {
                "Effect": "Allow",
                "Principal": {"Service": props["Principal"]},
                "Action": props["Action"],
                "Resource": function,
            }
            if "SourceArn" in props:
                statement["Condition"] = {
                    "ArnLike": {"AWS:SourceArn": str(resolver.resolve(props["SourceArn"]))}
                }
            function_policies.setdefault(function, []).append(statement)
        elif kind == "AWS::KMS::Key":
            iam.set_resource_policy(resolver.get_att(logical_id, "Arn"), resolver.resolve(props["KeyPolicy"]))
        elif kind == "AWS::SNS::Topic" and "KmsMasterKeyId" in props:
            key = str(resolver.resolve(props["KmsMasterKeyId"]))
            key_arn = (
                key
                if key.startswith("arn:")
                else f"arn:aws:kms:{REGION}:{ACCOUNT}:{'' if key.startswith('alias/') else 'key/'}{key}"
            )
            stack.topic_keys[resolver.ref(logical_id)] = key_arn
    for function, statements in function_policies.items():
        iam.set_resource_policy(function, {"Version": "2012-10-17", "Statement": statements})


def publish_denial(iam: Authorizer, stack: Stack, service: str, topic: str, source_arn: str) -> str | None:
    """Why ``service`` (for ``source_arn``) could not publish to ``topic``, or None if it can.

    The topic's policy must let the service publish, and for an encrypted topic the key's policy must let
    it use the key ("Configure server-side encryption for Amazon SNS topics": an AWS managed key never does).
    """
    needs = [Request("sns:Publish", topic)]
    key = stack.topic_keys.get(topic)
    if key is not None:
        needs += [Request("kms:GenerateDataKey", key), Request("kms:Decrypt", key)]
    return _delivery_denial(iam, service, needs, source_arn)


def _delivery_denial(iam: Authorizer, service: str, needs: list[Request], source_arn: str) -> str | None:
    """Why ``service``, delivering for ``source_arn`` in this account, may not make ``needs``; or None."""
    denial = iam.check_service(
        service, None, needs, {"aws:SourceArn": source_arn, "aws:SourceAccount": ACCOUNT}
    )
    return None if denial is None else denial.message()


def _check_alarm_actions(
    iam: Authorizer, resolver: _Resolver, stack: Stack, logical_id: str, props: dict[str, Any]
) -> None:
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{resolver._name(logical_id)}"
    for action in props.get("AlarmActions", []):
        topic = str(resolver.resolve(action))
        reason = publish_denial(iam, stack, "cloudwatch.amazonaws.com", topic, alarm)
        if reason is not None:
            stack.undeliverable.append(f"alarm {logical_id} cannot notify {topic}: {reason}")


def _create_rule(
    endpoint: LocalEndpoint, resolver: _Resolver, stack: Stack, logical_id: str, props: dict[str, Any]
) -> None:
    events = endpoint.client("events")
    sqs = endpoint.client("sqs")
    rule = resolver.ref(logical_id)
    bus = resolver.resolve(props.get("EventBusName", "default"))
    functions = {spec.name: spec for spec in stack.functions.values()}
    rule_arn = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/" + (f"{bus}/{rule}" if bus != "default" else rule)
    targets = []
    for target in props.get("Targets", []):
        arn = str(resolver.resolve(target["Arn"]))
        function = functions.get(arn.rsplit(":", 1)[-1]) if ":function:" in arn else None
        dead_letter_arn = str(resolver.resolve(target.get("DeadLetterConfig", {}).get("Arn", "")))
        if dead_letter_arn:  # EventBridge sends dead letters as events.amazonaws.com: the queue must allow it
            needs = [Request("sqs:SendMessage", dead_letter_arn)]
            denied = _delivery_denial(endpoint.iam, "events.amazonaws.com", needs, rule_arn)
            if denied is not None:
                stack.undeliverable.append(f"rule {logical_id} cannot dead-letter: {denied}")
        reason = None
        if function is None and arn.startswith("arn:aws:sns:"):
            reason = publish_denial(endpoint.iam, stack, "events.amazonaws.com", arn, rule_arn)
        if (
            function is not None
        ):  # the function's resource policy must let EventBridge invoke it for this rule
            needs = [Request("lambda:InvokeFunction", arn)]
            reason = _delivery_denial(endpoint.iam, "events.amazonaws.com", needs, rule_arn)
        if reason is not None:
            # AWS retries, then puts the event in the target's dead-letter queue: so does the local cloud
            stack.undeliverable.append(f"rule {logical_id} cannot deliver to {arn}: {reason}")
            dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
            if dead_letter:
                targets.append({"Id": target["Id"], "Arn": str(resolver.resolve(dead_letter))})
            continue
        if function is None and arn.startswith("arn:aws:sns:"):
            # moto's EventBridge cannot deliver to SNS: the topic's messages land in a stand-in queue
            name = f"{arn.rsplit(':', 1)[-1]}-messages"
            stack.topic_queues[arn] = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = _queue_arn(name)
        if function is None:
            targets.append({"Id": target["Id"], "Arn": arn})
            continue
        if "ScheduleExpression" in props:
            stack.schedules.append(
                Schedule(function.logical_id, rule, resolver.resolve(props["ScheduleExpression"]))
            )
            continue
        # After its retries a failed invocation goes to the function's on-failure destination as Lambda's
        # invocation record (the runtime sends it): the template sends both to the failed-events queue.
        attributes = {"VisibilityTimeout": "2"}
        dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
        on_failure = None
        if dead_letter:
            on_failure = sqs.get_queue_url(QueueName=str(resolver.resolve(dead_letter)).rsplit(":", 1)[-1])[
                "QueueUrl"
            ]
        queue_name = f"{rule}-delivery"[:80]
        queue_url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        targets.append({"Id": target["Id"], "Arn": _queue_arn(queue_name)})
        stack.deliveries.append(
            Delivery(function.logical_id, rule, queue_url, on_failure, attempts=1 + function.max_retries)
        )
    if "EventPattern" not in props:
        return
    events.put_rule(
        Name=rule, EventBusName=bus, EventPattern=json.dumps(resolver.resolve(props["EventPattern"]))
    )
    if targets:
        events.put_targets(Rule=rule, EventBusName=bus, Targets=targets)


def _queue_source(resolver: _Resolver, stack: Stack, props: dict[str, Any]) -> None:
    arn = str(resolver.resolve(props["EventSourceArn"]))
    if ":sqs:" not in arn:
        raise NotImplementedError(f"event source {arn} is not emulated locally")
    name = (
        resolver.ref(props["FunctionName"])
        if isinstance(props["FunctionName"], str)
        else str(resolver.resolve(props["FunctionName"]))
    )
    function = next(spec for spec in stack.functions.values() if spec.name == name)
    queue_name = arn.rsplit(":", 1)[-1]
    logical = next(key for key, physical in resolver.physical.items() if physical == queue_name)
    concurrency = int(resolver.resolve(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2)))
    stack.queue_sources.append(
        QueueSource(
            function=function.logical_id,
            queue_url=resolver.queue_urls[logical],
            queue_arn=arn,
            batch_size=int(props.get("BatchSize", 10)),
            concurrency=min(concurrency, LOCAL_CONCURRENCY_CAP),
            report_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        )
    )
