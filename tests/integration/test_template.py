"""The template's own wiring: its event patterns, matched by moto's EventBridge, route the right events.

A rule or pattern that is wrong in template.yaml fails here, not in production.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from batchrecs.aws.events import EventBridgePublisher
from batchrecs.formats.events import JOB_STATE_CHANGE, JobStateChange

from tests.conftest import ROOT
from tests.integration.conftest import BUCKET, BUS, Cloud, sample_event


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref X) as {"Ref": X}-like dicts."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)
TEMPLATE = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def _pattern(function: str, event: str, refs: dict[str, str]) -> str:
    pattern = TEMPLATE["Resources"][function]["Properties"]["Events"][event]["Properties"]["Pattern"]
    text = json.dumps(pattern)
    for ref, value in refs.items():
        text = text.replace(json.dumps({"Ref": ref}), json.dumps(value))
    assert '{"Ref"' not in text, text
    return text


def _tap(cloud: Cloud, name: str, pattern: str, bus: str) -> str:
    url = cloud.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = cloud.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern)
    cloud.events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": name, "Arn": arn}])
    return url


def _received(cloud: Cloud, url: str) -> list[dict[str, Any]]:
    messages = cloud.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def test_export_rule_fires_only_on_active(cloud: Cloud) -> None:
    # Given the export function's rule from the template on the stack's bus
    url = _tap(cloud, "export-rule", _pattern("ExportPlannerFunction", "JobActive", {}), BUS)
    publisher = EventBridgePublisher(BUS)
    # When the monitor publishes every kind of state change
    for status in ("CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE", "CREATE FAILED"):
        publisher.publish(JOB_STATE_CHANGE, JobStateChange(jobName="j", route="home", status=status))
    # Then only the ACTIVE one reaches the export function
    assert [event["detail"]["status"] for event in _received(cloud, url)] == ["ACTIVE"]


def test_upload_rule_matches_objects_under_input_of_the_stack_bucket_only(cloud: Cloud) -> None:
    url = _tap(cloud, "upload-rule", _pattern("SubmitFunction", "Upload", {"DataBucket": BUCKET}), "default")
    entries = []
    for bucket, key in [
        (BUCKET, "input/home/users.jsonl"),
        (BUCKET, "staged/home/x.jsonl"),
        ("other", "input/x"),
    ]:
        event = sample_event("s3_object_created.json")
        event["detail"]["bucket"]["name"] = bucket
        event["detail"]["object"]["key"] = key
        entries.append(
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
            }
        )
    cloud.events.put_events(Entries=entries)
    assert [event["detail"]["object"]["key"] for event in _received(cloud, url)] == ["input/home/users.jsonl"]


def test_alert_rule_catches_rejections_and_failures(cloud: Cloud) -> None:
    pattern = json.dumps(TEMPLATE["Resources"]["JobFailureAlertRule"]["Properties"]["EventPattern"])
    url = _tap(cloud, "alert-rule", pattern, BUS)
    publisher = EventBridgePublisher(BUS)
    for status in ("REJECTED", "CREATE PENDING", "CREATE FAILED", "ACTIVE"):
        publisher.publish(JOB_STATE_CHANGE, JobStateChange(jobName="j", route="home", status=status))
    assert sorted(event["detail"]["status"] for event in _received(cloud, url)) == [
        "CREATE FAILED",
        "REJECTED",
    ]


def test_template_passes_cfn_lint_with_the_serverless_rules_and_informational_checks() -> None:
    # cfn-lint-serverless: every async path has a dead-letter queue or on-failure destination;
    # informational checks (I3011, I3013): stateful resources say what happens to their data
    from cfnlint.api import ManualArgs, lint_file

    args = ManualArgs(append_rules=["cfn_lint_serverless.rules"], include_checks=["I"])
    matches = lint_file(ROOT / "template.yaml", args)
    assert [str(match) for match in matches] == []


def _statements(function: str) -> dict[str, dict[str, Any]]:
    """A function's policy statements by Sid, those of a conditional policy (!If) included."""
    policies = TEMPLATE["Resources"][function]["Properties"]["Policies"]
    policies = [policy["If"][1] if "If" in policy else policy for policy in policies]
    return {statement["Sid"]: statement for policy in policies for statement in policy["Statement"]}


def test_with_a_data_key_each_function_using_the_buckets_objects_may_use_it_through_s3_only() -> None:
    # "Using server-side encryption with AWS KMS keys" (S3): reading an SSE-KMS object needs kms:Decrypt,
    # writing one kms:GenerateDataKey; the grant is for the stack's key, through S3 only
    resources = TEMPLATE["Resources"]
    encryption = resources["DataBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert encryption[0]["ServerSideEncryptionByDefault"] == {
        "If": [
            "UseDataKmsKey",
            {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Ref": "DataKmsKeyArn"}},
            {"SSEAlgorithm": "AES256"},
        ]
    }
    assert encryption[0]["BucketKeyEnabled"] is True
    using_objects = {
        name
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for statement in _statements(name).values()
        if re.search(r"s3:(Get|Put)Object", str(statement["Action"])) and "DataBucket" in str(statement)
    }
    assert using_objects == {
        "SubmitFunction",
        "MonitorFunction",
        "ExportPlannerFunction",
        "ExportWorkerFunction",
    }
    for name in using_objects:
        [conditional] = [p for p in resources[name]["Properties"]["Policies"] if "If" in p]
        condition, granted, otherwise = conditional["If"]
        assert (condition, otherwise) == ("UseDataKmsKey", {"Ref": "AWS::NoValue"})
        [statement] = granted["Statement"]
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert statement["Resource"] == {"Ref": "DataKmsKeyArn"}
        assert statement["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Sub": "s3.${AWS::Region}.amazonaws.com"}}
        }
    submit = resources["SubmitFunction"]["Properties"]["Environment"]["Variables"]
    assert submit["DATA_KMS_KEY_ARN"] == {"Ref": "DataKmsKeyArn"}


def test_ses_may_read_only_the_import_files_and_only_for_this_account() -> None:
    statements = TEMPLATE["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [ses] = [s for s in statements if s.get("Principal") == {"Service": "ses.amazonaws.com"}]
    assert (ses["Effect"], ses["Action"]) == ("Allow", "s3:GetObject")
    assert ses["Resource"] == {"Sub": "${DataBucket.Arn}/ses-imports/*"}
    assert ses["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:*"}},
    }


def test_ses_permissions_are_limited_to_the_functions_and_prefixes_that_need_them() -> None:
    monitor, worker = _statements("MonitorFunction"), _statements("ExportWorkerFunction")
    assert monitor["WriteContactImports"]["Resource"] == [  # and the contact list as read, over several ticks
        {"Sub": "${DataBucket.Arn}/ses-imports/*"},
        {"Sub": "${DataBucket.Arn}/exports/*/list-snapshot/*"},
    ]
    assert monitor["ReadStagedContacts"]["Resource"] == {"Sub": "${DataBucket.Arn}/exports/*"}
    assert sorted(monitor["ReadContactPreferences"]["Action"]) == ["ses:GetContactList", "ses:ListContacts"]
    assert sorted(monitor["RunContactImports"]["Action"]) == ["ses:CreateImportJob", "ses:GetImportJob"]
    assert worker["LookUpAddresses"]["Action"] == "dynamodb:BatchGetItem"
    assert {"Sub": "${DataBucket.Arn}/exports/*"} in worker["WriteErrorReportsAndStagedContacts"]["Resource"]
    # The worker neither imports contacts nor reads the contact list
    assert not any("ses:" in str(statement["Action"]) for statement in worker.values())
    # One contact list per account: the stack creates one only when none is given
    assert TEMPLATE["Resources"]["ContactList"]["Condition"] == "CreateContactList"
    assert TEMPLATE["Conditions"]["CreateContactList"] == {"Equals": [{"Ref": "ExistingContactListName"}, ""]}


def test_chunks_go_through_a_fifo_queue_only_the_planner_sends_to() -> None:
    # FIFO: one message of a group at a time is what bounds a route's workers (maxExportWorkers)
    resources = TEMPLATE["Resources"]
    assert resources["ChunksQueue"]["Properties"]["FifoQueue"] is True
    assert resources["ChunksDeadLetterQueue"]["Properties"]["FifoQueue"] is True
    senders = {
        name: statement["Resource"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
        for statement in _statements(name).values()
        if "sqs:SendMessage" in str(statement["Action"])
    }
    assert senders == {"ExportPlannerFunction": {"GetAtt": "ChunksQueue.Arn"}}


def test_every_bucket_prefix_the_template_grants_is_one_of_the_layouts() -> None:
    # Given every object ARN and s3:prefix condition in template.yaml's policies
    from batchrecs import layout

    text = json.dumps(TEMPLATE)
    granted = set(re.findall(r"\$\{DataBucket\.Arn\}/([a-z-]+/)", text))
    granted |= set(re.findall(r'"s3:prefix": \[?"([a-z-]+/)', text))
    granted |= {
        match
        for group in re.findall(r'"s3:prefix": \[([^\]]*)\]', text)
        for match in re.findall(r'"([a-z-]+/)', group)
    }
    # Then each names a prefix of the one bucket layout the code builds its keys with
    assert granted, "no bucket prefixes found: the pattern no longer matches the template"
    assert granted <= set(layout.PREFIXES), granted - set(layout.PREFIXES)
    assert {"staged/", "output/", "ses-imports/", "exports/", "reports/", "input/", "rejected/"} <= granted


def _parameters(**given: str) -> dict[str, str]:
    from batchrecs_local.session import TEMPLATE_SOLUTIONS

    arns = {
        name: f"arn:aws:personalize:us-east-1:123456789012:solution/{recipe}/1"
        for name, recipe in TEMPLATE_SOLUTIONS.items()
    }
    return {**arns, **given}


def test_an_empty_solution_parameter_turns_its_routes_off_and_leaves_no_broken_arn_in_any_policy() -> None:
    # Issue #17, part 3: only routes in use need an ARN
    from batchrecs_local.stack import resolve_template

    resolver, resources = resolve_template(_parameters(RelatedItemsSolutionVersionArn=""), "batchrecs")
    submit = resolver.resolve(resources["SubmitFunction"]["Properties"])
    variables = submit["Environment"]["Variables"]
    assert variables["RELATED_ITEMS_SOLUTION_VERSION_ARN"] == variables["RELATED_ITEMS_SOLUTION_ARN"] == ""
    assert variables["USER_PERSONALIZATION_SOLUTION_ARN"].endswith(":solution/aws-user-personalization")
    granted = json.dumps([resolver.resolve(r.get("Properties", {})) for r in resources.values()])
    assert "aws-similar-items" not in granted and "aws-user-personalization/*" in granted
    assert not re.search(r":solution/(\*|\")", granted)  # no solution ARN cut short by the empty value
    # and the stack tells the operator commands the same model variables its functions have
    from batchrecs.operate.stack import Stack

    listed = resolver.resolve({"Fn::Sub": TEMPLATE["Outputs"]["ModelVariables"]["Value"]["Sub"]})
    told = Stack("batchrecs", {"ModelVariables": listed}).model_variables()
    assert told == {name: value for name, value in variables.items() if "_SOLUTION_" in name}
    assert Stack("older", {}).model_variables() == {}  # a stack without the output: nothing is known


def test_a_deploy_with_the_shipped_placeholders_or_no_model_at_all_stops_before_anything_is_created() -> None:
    import tomllib

    from batchrecs_local.stack import resolve_template

    # Given samconfig.toml as shipped (every environment): its placeholders fail the parameters' pattern,
    # which CloudFormation checks before it creates anything
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for environment in ("default", "dev", "prod"):
        overrides = dict(
            o.split("=", 1) for o in config[environment]["deploy"]["parameters"]["parameter_overrides"]
        )
        placeholders = {k: v for k, v in overrides.items() if "REPLACE-ME" in v}
        assert placeholders, environment
        with pytest.raises(ValueError, match="expected a Personalize solution version"):
            resolve_template(_parameters(**placeholders), "batchrecs")
    # And the template's rule refuses a stack with no model at all
    with pytest.raises(ValueError, match="give at least one solution version ARN"):
        resolve_template({name: "" for name in _parameters()}, "batchrecs")


def _emitted_metrics() -> set[str]:
    """The metric names the functions' handlers emit (``metrics.add_metric(name="...")``)."""
    found = set()
    for app in (ROOT / "functions").glob("*/app.py"):
        found |= set(re.findall(r'add_metric\(name="([A-Za-z]+)"', app.read_text()))
    return found


def test_each_dashboard_widget_and_alarm_names_a_metric_the_code_emits_or_a_queue_of_the_stack() -> None:
    # Issue #17, part 2
    emitted = _emitted_metrics()
    assert {"RecordsWritten", "ChunksReceived", "UploadsHandled", "JobsOverTimeLimit"} <= emitted
    resources = TEMPLATE["Resources"]
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Sub"]
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "X", body))
    named: set[str] = set()
    for widget in dashboard["widgets"]:
        metrics = widget["properties"]["metrics"]
        assert metrics, widget["properties"]["title"]
        for entry in metrics:
            if isinstance(entry[0], dict):  # a math expression over the widget's other metrics
                continue
            namespace, name = entry[0], entry[1]
            if namespace == "batchrecs":
                assert name in emitted, (widget["properties"]["title"], name)
                assert entry[2:4] == ["service", "X"]  # this stack's (its name is the service dimension)
                named.add(name)
            else:
                assert namespace == "AWS/SQS" and entry[2] == "QueueName"
    queues = re.findall(r"\$\{(\w+)\.QueueName\}", body)
    assert sorted(queues) == sorted(n for n, r in resources.items() if r["Type"] == "AWS::SQS::Queue")
    alarms = {n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    ours = {n: a["MetricName"] for n, a in alarms.items() if a.get("Namespace") == "batchrecs"}
    assert set(ours) >= {"JobOverTimeLimitAlarm", "SustainedThrottlingAlarm"}
    assert set(ours.values()) <= emitted and set(ours.values()) <= named
    # every metric of a job's path is on the dashboard (not the preference ledger's, nor the planner's count)
    assert emitted - named <= {
        "PreferenceChangesRecorded",
        "PreferenceEventsUnrecorded",
        "ExportChunksPlanned",
    }
