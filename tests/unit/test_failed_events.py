"""What ``redrive-events`` does with each kind of message of the failed-events queue."""

from __future__ import annotations

import json
from typing import Any

from batchrecs.aws.failed_events import redrive_failed_events

EVENT = {
    "detail-type": "Object Created",
    "source": "aws.s3",
    "detail": {"object": {"key": "input/home/u.jsonl"}},
}
TICK = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:stack-submit"
TOPIC = "arn:aws:sns:us-east-1:123456789012:stack-alerts"


class Queue:
    def __init__(self, *messages: tuple[Any, dict[str, str]]) -> None:
        self.messages = [
            {
                "MessageId": str(n),
                "ReceiptHandle": f"r{n}",
                "Body": body if isinstance(body, str) else json.dumps(body),
                "MessageAttributes": {
                    k: {"StringValue": v, "DataType": "String"} for k, v in attributes.items()
                },
            }
            for n, (body, attributes) in enumerate(messages)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        return {"Messages": [m for m in self.messages if m["ReceiptHandle"] not in self.deleted]}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:  # noqa: N803 - boto3's names
        self.deleted.append(ReceiptHandle)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)

    def publish(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_each_kind_of_failed_message_is_run_again_or_left_with_a_reason() -> None:
    record = {"requestContext": {"functionArn": f"{FUNCTION}:$LATEST"}, "requestPayload": EVENT}
    queue = Queue(
        (record, {}),  # Lambda's invocation record: the function is invoked again with the event
        (EVENT, {"TARGET_ARN": FUNCTION}),  # a rule could not deliver to a function
        (EVENT, {"TARGET_ARN": TOPIC}),  # a rule could not deliver an alert
        ({"requestContext": {"functionArn": FUNCTION}, "requestPayload": TICK}, {}),  # a failed tick
        ("not json", {}),
    )
    lambdas, sns = Recorder(), Recorder()
    done = redrive_failed_events("url", sqs=queue, lambdas=lambdas, sns=sns)
    assert (done.invoked, done.published, done.dropped_ticks) == (2, 1, 1)
    assert [call["FunctionName"] for call in lambdas.calls] == ["stack-submit", "stack-submit"]
    assert all(
        json.loads(call["Payload"]) == EVENT and call["InvocationType"] == "Event" for call in lambdas.calls
    )
    assert sns.calls == [{"TopicArn": TOPIC, "Message": json.dumps(EVENT)}]
    assert done.left == ["4: not JSON"] and queue.deleted == ["r0", "r1", "r2", "r3"]
