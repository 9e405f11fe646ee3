"""Re-drive the failed-events queue: what failed after its retries is run again, once its cause is fixed.

The queue holds two kinds of message (template.yaml sends both there):

- Lambda's invocation record of an asynchronous invocation whose retries were exhausted
  (``requestContext.functionArn``, ``requestPayload``: "Adding a destination", Lambda Developer Guide):
  the function is invoked again, asynchronously, with the same event;
- an event an EventBridge rule could not deliver (the body is the event; the ``TARGET_ARN`` message
  attribute names the target): delivered again to a Lambda function or an SNS topic target.

Scheduled monitor ticks are dropped (the next tick does the same work). Each message is re-run before it
is deleted, so a crash repeats one rather than losing it (every handler is idempotent); a message that
cannot be re-run is left on the queue and counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3


@dataclass
class Redriven:
    invoked: int = 0
    published: int = 0
    dropped_ticks: int = 0
    left: list[str] = field(default_factory=list)  # message ids not re-run, with why


def redrive_failed_events(
    queue_url: str, sqs: Any = None, lambdas: Any = None, sns: Any = None, limit: int | None = None
) -> Redriven:
    sqs = sqs or boto3.client("sqs")
    lambdas = lambdas or boto3.client("lambda")
    sns = sns or boto3.client("sns")
    done = Redriven()
    seen: set[str] = set()
    while limit is None or len(seen) < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=30
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            return done
        for message in fresh:
            seen.add(message["MessageId"])
            reason = _rerun(message, lambdas, sns, done)
            if reason is None:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            else:
                done.left.append(f"{message['MessageId']}: {reason}")
    return done


def _rerun(message: dict[str, Any], lambdas: Any, sns: Any, done: Redriven) -> str | None:
    """Run the message again; the reason it cannot be, or None once it was."""
    try:
        body = json.loads(message["Body"])
    except json.JSONDecodeError:
        return "not JSON"
    if isinstance(body, dict) and "requestContext" in body and "requestPayload" in body:
        function, event = body["requestContext"].get("functionArn", ""), body["requestPayload"]
    else:
        target = (message.get("MessageAttributes") or {}).get("TARGET_ARN", {}).get("StringValue", "")
        function, event = target, body
        if ":sns:" in target:
            sns.publish(TopicArn=target, Message=message["Body"])
            done.published += 1
            return None
    if isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        done.dropped_ticks += 1
        return None
    if ":function:" not in function:
        return "no function or topic to deliver it to"
    name = function.split(":function:")[-1].split(":")[0]  # the function, not the version it ran
    lambdas.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
    done.invoked += 1
    return None
