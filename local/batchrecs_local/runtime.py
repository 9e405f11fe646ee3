"""Run the template's functions in-process, fed the way the template wires them.

Each function's handler (``functions/<name>/app.py``) is imported once and called with
Lambda-shaped events and a context object: events from its delivery queues (one event per
invocation, as EventBridge invokes asynchronously; a failed invocation is retried and ends in the
dead-letter queue, as the template configures), and Scheduled Events from its schedules at
``tick_seconds`` instead of the template's rate.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3

from batchrecs_local.endpoint import ACCOUNT, CREDENTIALS, REGION, LocalEndpoint, sharing_models
from batchrecs_local.iam import identity
from batchrecs_local.stack import Delivery, FunctionSpec, QueueSource, Stack

# The chunks queue (FIFO) is polled short with a pause: moto's long polling spins a CPU while a FIFO
# queue's visible messages wait behind a message group in flight. The rules' delivery queues (standard)
# are long-polled: moto wakes the poll when a message arrives, so an event reaches its function at once,
# with one request a second instead of five while idle.
POLL_INTERVAL = 0.5  # an empty queue is polled again after this, or at once when a message is sent
LONG_POLL_SECONDS = 1


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class Invocation:
    function: str
    ok: bool
    error: str | None = None


class LocalRuntime:
    def __init__(
        self,
        endpoint: LocalEndpoint,
        stack: Stack,
        tick_seconds: float = 1.0,
        overrides: dict[str, str] | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._stack = stack
        self._tick = tick_seconds
        self._overrides = overrides or {}
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._handlers: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        self._long_polling: set[int] = set()  # threads waiting in a long poll: no invocation to wait for
        self.invocations: list[Invocation] = []

    def start(self) -> LocalRuntime:
        _apply_environment(self._stack, self._endpoint, self._overrides)
        _cold_start()
        for spec in self._stack.functions.values():
            self._handlers[spec.logical_id] = _load(spec)
        for delivery in self._stack.deliveries:
            self._spawn(f"poll-{delivery.rule}", self._poll, delivery)
        for source in self._stack.queue_sources:
            for worker in range(source.concurrency):
                self._spawn(f"sqs-{source.function}-{worker}", self._poll_batches, source)
        for schedule in self._stack.schedules:
            self._spawn(f"tick-{schedule.rule}", self._ticker, schedule.function, schedule.rule)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling and ticking; invocations still running get ``timeout`` seconds in all."""
        self._stopping.set()
        self._endpoint.changed.set()  # the ticker waits on it
        self._endpoint.messages_sent.happened()  # and the queue pollers on this
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            with self._lock:
                idle = thread.ident in self._long_polling  # it returns within a second, and invokes nothing
            if not idle:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Call a function's handler as Lambda would; exceptions propagate (and are recorded)."""
        spec = self._stack.functions[function]
        context = LambdaContext(
            spec.name, invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{spec.name}"
        )
        try:
            with identity.acting_as(identity.function_key(function)):  # its calls are signed as its role
                result = self._handlers[function].handler(event, context)
        except Exception as exc:
            self._record(Invocation(function, False, f"{type(exc).__name__}: {exc}"))
            raise
        self._record(Invocation(function, True))
        return result

    def failures(self) -> list[Invocation]:
        with self._lock:
            return [inv for inv in self.invocations if not inv.ok]

    def _record(self, invocation: Invocation) -> None:
        with self._lock:
            self.invocations.append(invocation)

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def invoke_by_name(self, name: str, event: dict[str, Any]) -> bool:
        """Lambda's Invoke with InvocationType Event: run the function named ``name`` (its physical
        name or ARN) on ``event`` in the background; False if there is no such function."""
        name = name.split(":function:")[-1].split(":")[0]
        found = [spec.logical_id for spec in self._stack.functions.values() if spec.name == name]
        if not found:
            return False
        self._spawn(f"invoke-{name}", self._invoke_quietly, found[0], event)
        return True

    def _invoke_quietly(self, function: str, event: dict[str, Any]) -> None:
        try:
            self.invoke(function, event)
        except Exception:  # noqa: BLE001 - an asynchronous invocation's error is only logged
            traceback.print_exc(file=sys.stdout)

    def _poll(self, delivery: Delivery) -> None:
        function, queue_url = delivery.function, delivery.queue_url
        sqs = self._endpoint.client("sqs")
        while not self._stopping.is_set():
            with self._lock:
                self._long_polling.add(threading.get_ident())
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=1,
                    AttributeNames=["All"],
                    WaitTimeSeconds=LONG_POLL_SECONDS,
                )
            except Exception:  # noqa: BLE001 - the endpoint is shutting down
                if self._stopping.is_set():
                    return
                raise
            finally:
                with self._lock:
                    self._long_polling.discard(threading.get_ident())
            if self._stopping.is_set():  # stopped while it waited: what it received comes back later
                return
            for message in messages.get("Messages", []):
                event = json.loads(message["Body"])
                event.setdefault("account", ACCOUNT)  # moto leaves it out of events put on a bus
                try:
                    self.invoke(function, event)
                except Exception as exc:  # noqa: BLE001 - left on the queue: retried, then given up
                    traceback.print_exc(file=sys.stdout)  # the functions' log
                    attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
                    if attempt < delivery.attempts or delivery.on_failure_url is None:
                        continue
                    sqs.send_message(  # as Lambda sends its on-failure destination
                        QueueUrl=delivery.on_failure_url,
                        MessageBody=json.dumps(self._failure_record(function, event, exc, attempt)),
                    )
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _failure_record(
        self, function: str, event: dict[str, Any], exc: Exception, attempts: int
    ) -> dict[str, Any]:
        """What Lambda sends an on-failure destination once an asynchronous invocation's retries are
        exhausted ("Adding a destination", Lambda Developer Guide: the invocation record)."""
        name = self._stack.functions[function].name
        return {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": attempts,
            },
            "requestPayload": event,
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "responsePayload": {"errorMessage": str(exc), "errorType": type(exc).__name__},
        }

    def _poll_batches(self, source: QueueSource) -> None:
        """An SQS event source mapping: batches in, failed records (or the whole batch) left to retry.

        Lambda polls with the function's own role, so its policy must let it receive and delete."""
        sqs = self._endpoint.client("sqs", access_key=identity.function_key(source.function))
        sent, queue = self._endpoint.messages_sent, source.queue_url.rsplit("/", 1)[-1]
        while not self._stopping.is_set():
            seen = sent.seen(queue)
            try:
                messages = sqs.receive_message(
                    QueueUrl=source.queue_url,
                    MaxNumberOfMessages=min(source.batch_size, 10),
                    AttributeNames=["All"],
                ).get("Messages", [])
            except Exception:  # noqa: BLE001 - the endpoint is shutting down
                if self._stopping.is_set():
                    return
                raise
            if not messages:  # short polls (moto's long poll spins on a FIFO queue): again when a
                sent.wait_after(seen, POLL_INTERVAL, queue)  # message is sent to it, or after the interval
                continue
            event = {"Records": [_sqs_record(message, source.queue_arn) for message in messages]}
            try:
                response = self.invoke(source.function, event) or {}
            except Exception:  # noqa: BLE001 - the whole batch comes back after the visibility timeout
                traceback.print_exc(file=sys.stdout)
                continue
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
            if not source.report_failures:
                failed = set()
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=source.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _ticker(self, function: str, rule: str) -> None:
        """The schedule's rule, every ``tick_seconds``, and at once when the endpoint's emulators change
        a job the function polls (on AWS it runs every minute: the local clock is faster)."""
        changed = self._endpoint.changed
        while not self._stopping.is_set():
            if changed.wait(self._tick):
                changed.clear()
            if self._stopping.is_set():
                return
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "region": REGION,
                "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule}"],
                "detail": {},
            }
            try:
                self.invoke(function, event)
            except Exception:  # noqa: BLE001 - a failed tick is retried by the next one, as on AWS
                traceback.print_exc(file=sys.stdout)


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _apply_environment(stack: Stack, endpoint: LocalEndpoint, overrides: dict[str, str]) -> None:
    """Functions share this process: their variables are merged, and must not disagree."""
    merged: dict[str, str] = {}
    for spec in stack.functions.values():
        for key, value in spec.environment.items():
            if merged.get(key, value) != value:
                raise RuntimeError(f"functions disagree on {key}; the local runtime shares one environment")
            merged[key] = value
    merged.update(
        {
            "AWS_ENDPOINT_URL": endpoint.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "POWERTOOLS_TRACE_DISABLED": "1",  # no X-Ray daemon locally
        }
    )
    merged.update(overrides)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(merged)
    identity.install(merged["AWS_ACCESS_KEY_ID"], merged["AWS_SECRET_ACCESS_KEY"])
    # the functions' clients (boto3's default session) share the local cloud's loaded service models
    boto3.DEFAULT_SESSION = sharing_models()


def _cold_start() -> None:
    """Forget what warm Lambda containers keep between invocations (the package's cached services, with
    clients of an earlier local cloud in this process): this runtime's functions start cold."""
    from batchrecs import compose

    for value in vars(compose).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


def _load(spec: FunctionSpec) -> ModuleType:
    module_name, _, _ = spec.handler.partition(".")
    path = spec.code_dir / f"{module_name}.py"
    loaded = importlib.util.spec_from_file_location(f"batchrecs_local_fn_{spec.logical_id}", path)
    if loaded is None or loaded.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s")
        time.sleep(interval)
