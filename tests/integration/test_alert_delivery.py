"""Alerts the deployed stack could not deliver show up in the local run instead of vanishing.

EventBridge and CloudWatch publish to an SNS topic as their service principals; with the topic encrypted
by the AWS managed key ``alias/aws/sns`` neither may use the key ("Configure server-side encryption for
Amazon SNS topics"), so AWS drops every alert after its retries. The local stack reports each such rule and
alarm, and sends the rule's events to its dead-letter queue, where AWS would put them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from batchrecs_local import stack as local_stack
from batchrecs_local.endpoint import LocalEndpoint
from batchrecs_local.session import TEMPLATE_SOLUTIONS

from tests.conftest import ROOT


@pytest.fixture
def endpoint() -> Iterator[LocalEndpoint]:
    local = LocalEndpoint().start()
    urllib3.request("POST", f"{local.url}/moto-api/reset")  # moto's state is per process
    yield local
    urllib3.request("POST", f"{local.url}/moto-api/reset")
    local.stop()


def _deploy(endpoint: LocalEndpoint, template: Path) -> local_stack.Stack:
    solutions = endpoint.emulator.solution_versions
    parameters = {param: solutions[recipe] for param, recipe in TEMPLATE_SOLUTIONS.items()}
    return local_stack.deploy(endpoint, parameters, stack_name="alerts", template=template)


def test_the_shipped_template_can_deliver_every_alert(
    endpoint: LocalEndpoint,
) -> None:
    stack = _deploy(endpoint, ROOT / "template.yaml")
    assert stack.undeliverable == []
    # the alert rule targets the topic's (stand-in) queue
    [(topic, _)] = stack.topic_queues.items()
    assert topic == stack.outputs["AlertTopicArn"]


def test_an_aws_managed_key_on_the_alert_topic_is_reported_and_alerts_go_to_the_dead_letter_queue(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    # Given the template as it was before: the alert topic encrypted with alias/aws/sns
    template = tmp_path / "template.yaml"
    text = (ROOT / "template.yaml").read_text()
    template.write_text(text.replace("KmsMasterKeyId: !Ref AlertTopicKey", "KmsMasterKeyId: alias/aws/sns"))
    # When the local cloud deploys it
    stack = _deploy(endpoint, template)
    # Then the alert rule and all six alarms are reported as unable to notify, naming the key
    reported = sorted(problem.split(" ")[1] for problem in stack.undeliverable)
    assert reported == sorted(
        [
            "JobFailureAlertRule",
            "JobStuckAlertRule",
            "FailedEventsAlarm",
            "ChunksDeadLetterAlarm",
            "SubmitErrorsAlarm",
            "MonitorErrorsAlarm",
            "ExportWorkerErrorsAlarm",
            "ExportPlannerErrorsAlarm",
            "JobOverTimeLimitAlarm",
            "SustainedThrottlingAlarm",
        ]
    )
    assert all(
        "kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:123456789012:alias/aws/sns" in p
        for p in stack.undeliverable
    )
    # and the alert rule's events go where AWS would put them: the failed-events queue
    events = endpoint.client("events")
    [target] = events.list_targets_by_rule(Rule="alerts-jobfailurealertrule", EventBusName="alerts-bus")[
        "Targets"
    ]
    assert target["Arn"].endswith(":alerts-failedeventsqueue")
    assert stack.topic_queues == {}
