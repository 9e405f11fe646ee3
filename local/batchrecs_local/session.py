"""A local cloud session: endpoint + stack + runtime, and what a user does with it."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import urllib3
from batchrecs import layout
from batchrecs.jobs.model import CREATE_FAILED, EXPORT_FAILED, EXPORTED, REJECTED
from boto3.dynamodb.types import TypeDeserializer

from batchrecs_local.endpoint import ACCOUNT, REGION, LocalEndpoint
from batchrecs_local.iam import Authorizer
from batchrecs_local.iam.policy import Request
from batchrecs_local.personalize.emulator import Timings
from batchrecs_local.project import find_template
from batchrecs_local.runtime import LocalRuntime
from batchrecs_local.schedules import ScheduleRunner
from batchrecs_local.stack import Stack, deploy

FINAL_STATUSES = (REJECTED, CREATE_FAILED, EXPORTED, EXPORT_FAILED)
# The template's solution-version parameters, served locally by solution versions of these recipes.
TEMPLATE_SOLUTIONS = {
    "UserPersonalizationSolutionVersionArn": "aws-user-personalization",
    "RelatedItemsSolutionVersionArn": "aws-similar-items",
    "PersonalizedRankingSolutionVersionArn": "aws-personalized-ranking",
    "ItemAffinitySolutionVersionArn": "aws-item-affinity",
    "ItemAttributeAffinitySolutionVersionArn": "aws-item-attribute-affinity",
}
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 0
    routes_file: Path | None = None
    timings: Timings = Timings(pending=0.2, running=0.4)  # the job states, each seen by two ticks or more
    tick_seconds: float = 0.2
    log_level: str = "WARNING"
    chunk_bytes: int = 1 << 20  # the template's ExportChunkBytes, small locally to show the fan-out
    enforce_iam: bool = True  # False: calls the template does not allow are recorded, not refused
    kms: bool = False  # deploy with DataKmsKeyArn: a local customer managed key encrypts the bucket and jobs
    stack_name: str = "batchrecs"  # what DescribeStacks answers for (the operator commands' --stack)
    template: Path | None = None  # default: template.yaml in the working directory or above it


class LocalCloud:
    def __init__(self, options: Options = Options()) -> None:
        self.options = options
        self.template = find_template(options.template)
        self.endpoint = LocalEndpoint(
            options.host, options.port, options.timings, Authorizer(ACCOUNT, enforce=options.enforce_iam)
        )
        self.stack: Stack | None = None
        self.runtime: LocalRuntime | None = None
        self._jobs_lock = threading.Lock()
        self._jobs_read: tuple[int, list[dict[str, Any]]] | None = None  # the jobs table's writes seen, jobs

    def __enter__(self) -> LocalCloud:
        self.endpoint.start()
        try:
            solutions = self.endpoint.emulator.solution_versions
            parameters = {param: solutions[recipe] for param, recipe in TEMPLATE_SOLUTIONS.items()}
            parameters["ExportChunkBytes"] = str(self.options.chunk_bytes)
            if self.options.kms:  # (a KMS client only then: its model takes 25 ms to load)
                made = self.endpoint.client("kms").create_key(Description="batchrecs local data key")
                parameters["DataKmsKeyArn"] = key = made["KeyMetadata"]["Arn"]
            self.stack = deploy(self.endpoint, parameters, template=self.template)
            if self.options.kms:  # the key policy README asks for, once the stack's role exists
                policy = data_key_policy(ACCOUNT, self.stack.outputs["PersonalizeServiceRoleArn"])
                kms = self.endpoint.client("kms")
                kms.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
                self.endpoint.iam.set_resource_policy(key, policy)
            for problem in self.stack.undeliverable:  # AWS would drop these notifications: say so
                print(f"local cloud: {problem}", file=sys.stderr)
            seed_people(self.endpoint, self.stack.outputs)
            # DescribeStacks answers with the outputs, so the operator commands find this stack by name
            self.endpoint.stacks.put(self.options.stack_name, self.stack.outputs)
            # a failed chunk is tried again after 1 s, not the minute it waits on AWS
            overrides = {"POWERTOOLS_LOG_LEVEL": self.options.log_level, "CHUNK_RETRY_SECONDS": "1"}
            if self.options.routes_file is not None:
                overrides["ROUTES_FILE"] = str(self.options.routes_file.resolve())
            self.runtime = LocalRuntime(
                self.endpoint, self.stack, self.options.tick_seconds, overrides
            ).start()
            self.endpoint.invoke_function = self.runtime.invoke_by_name
        except BaseException:
            self.endpoint.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runtime is not None:
            self.runtime.stop()
        # moto's state lives in this process: the next local cloud in it starts from nothing
        urllib3.request("POST", f"{self.endpoint.url}/moto-api/reset")
        self.endpoint.stop()

    # ------------------------------------------------------------------ names

    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None
        return self.stack.outputs

    @property
    def bucket(self) -> str:
        return self.outputs["DataBucketName"]

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint.url,
            "region": REGION,
            "stack": self.options.stack_name,  # for batchrecs jobs/show/submit/redrive --endpoint-url
            "bucket": self.bucket,
            "recommendations_table": self.outputs["RecommendationsTableName"],
            "jobs_table": self.outputs["JobsTableName"],
            "event_bus": self.outputs["EventBusName"],
            "alert_topic": self.outputs["AlertTopicArn"],
            "chunks_queue": self.outputs["ChunksQueueUrl"],  # for batchrecs redrive-chunks
            "chunks_dead_letter_queue": self.outputs["ChunksDeadLetterQueueUrl"],
            "failed_events_queue": self.outputs["FailedEventsQueueUrl"],  # for batchrecs redrive-events
            "alert_messages_queue": self.stack.topic_queues.get(self.outputs["AlertTopicArn"])
            if self.stack
            else None,
            "solution_versions": dict(self.endpoint.emulator.solution_versions),
            "undeliverable_notifications": list(self.stack.undeliverable) if self.stack else [],
        }

    # ------------------------------------------------------------------ acting

    def upload(self, path: Path, route: str, name: str | None = None) -> str:
        key = f"input/{route}/{name or path.name}"
        self.endpoint.client("s3").put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        return key

    def replay_export(self, out_file: Path, route: str) -> str:
        """Treat ``out_file`` as a finished job's output on ``route`` and publish its ACTIVE event."""
        from batchrecs.aws.events import EventBridgePublisher
        from batchrecs.aws.jobs_table import DynamoDBJobStore
        from batchrecs.clock import utc_now
        from batchrecs.formats.events import JOB_STATE_CHANGE
        from batchrecs.jobs.model import ACTIVE, Job
        from batchrecs.routes.config import load_routes

        kind = load_routes(os.environ["ROUTES_FILE"]).get(route).kind
        digest = hashlib.sha256(out_file.read_bytes()).hexdigest()[:12]
        name = f"replay-{route}-{digest}"
        output_path = f"s3://{self.bucket}/output/{route}/{name}/"
        self.endpoint.client("s3").put_object(
            Bucket=self.bucket, Key=f"output/{route}/{name}/{out_file.name}", Body=out_file.read_bytes()
        )
        now = utc_now()
        job = Job(
            jobName=name,
            route=route,
            kind=kind.value,
            status=ACTIVE,
            sourceBucket=self.bucket,
            sourceKey=f"replay/{out_file.name}",
            sourceIdentity=digest,
            createdAt=now,
            updatedAt=now,
            outputPath=output_path,
        )
        DynamoDBJobStore(self.outputs["JobsTableName"], self.endpoint.client("dynamodb")).claim(job)
        EventBridgePublisher(self.outputs["EventBusName"], self.endpoint.client("events")).publish(
            JOB_STATE_CHANGE, job.state_change()
        )
        return f"replay/{out_file.name}"

    def fire_schedule(self, route: str, at: str | None = None) -> str:
        """What EventBridge Scheduler does when the route's schedule comes due (now, or at ``at``): as
        the schedule's role (which must let scheduler.amazonaws.com invoke the target), invoke its
        target with its input, the scheduled time filled in. The name of the job it makes."""
        assert self.stack is not None
        assert self.runtime is not None
        group = self.stack.physical["RouteSchedules"]
        scheduler = self.endpoint.client("scheduler")
        try:
            target = scheduler.get_schedule(Name=route, GroupName=group)["Target"]
        except scheduler.exceptions.ResourceNotFoundException:
            self.endpoint.changed.set()  # the monitor ticks now, not on its schedule
            raise LookupError(
                f"route {route} has no schedule (the monitor makes it on its next tick)"
            ) from None
        needs = [Request("lambda:InvokeFunction", target["Arn"])]
        denial = self.endpoint.iam.check_service(
            "scheduler.amazonaws.com",
            target["RoleArn"],
            needs,
            {"aws:SourceAccount": ACCOUNT},
            as_role_only=True,
        )
        if denial is not None:
            raise PermissionError(
                f"the schedule of route {route} cannot invoke its target: {denial.message()}"
            )
        moment = at or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        event = json.loads(target["Input"].replace("<aws.scheduler.scheduled-time>", moment))
        name = target["Arn"].split(":function:")[-1]
        function = next(spec.logical_id for spec in self.stack.functions.values() if spec.name == name)
        result = self.runtime.invoke(function, event)  # Scheduler's invoke is asynchronous: its answer is
        return str(result["jobName"])  # read here only to name the job the tick made

    def schedule_runner(self, scale: float) -> ScheduleRunner:
        """The routes' schedules firing on a clock ``scale`` times faster than real time (``local up``)."""
        assert self.stack is not None
        group = self.stack.physical["RouteSchedules"]
        scheduler = self.endpoint.client("scheduler")

        def schedules() -> dict[str, dict[str, Any]]:
            listed = scheduler.list_schedules(GroupName=group).get("Schedules", [])
            return {s["Name"]: scheduler.get_schedule(Name=s["Name"], GroupName=group) for s in listed}

        def fire(route: str, at: str) -> None:
            name = self.fire_schedule(route, at)
            print(f"local cloud: schedule of {route} fired for {at}: job {name}", file=sys.stderr, flush=True)

        def report(message: str) -> None:
            print(f"local cloud: {message}", file=sys.stderr, flush=True)

        return ScheduleRunner(schedules, fire, scale, report=report)

    def wait_for_job(self, name: str, timeout: float = 180) -> dict[str, Any]:
        """Wait until the job named ``name`` exists and reaches a final status."""

        def settled() -> dict[str, Any] | None:
            job = next((job for job in self.jobs() if job["jobName"] == name), None)
            return job if job is not None and job["status"] in FINAL_STATUSES else None

        return self._when_written(settled, timeout)

    def wait_for(
        self,
        source_keys: list[str],
        timeout: float = 180,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Wait until every upload's job reaches a final status; ``on_change`` gets each status change,
        ``on_poll`` each job at every poll (for a progress display)."""
        seen: dict[str, str] = {}

        def settled() -> dict[str, dict[str, Any]] | None:
            jobs = {  # an upload's own job (the parts of one run in parts report through it)
                job["sourceKey"]: job
                for job in self.jobs()
                if job["sourceKey"] in source_keys and "partOf" not in job
            }
            for key, job in jobs.items():
                if on_poll is not None:
                    on_poll(job)
                if on_change is not None and seen.get(key) != job["status"]:
                    seen[key] = job["status"]
                    on_change(job)
            done = len(jobs) == len(source_keys) and all(
                job["status"] in FINAL_STATUSES for job in jobs.values()
            )
            return jobs if done else None

        try:
            return self._when_written(settled, timeout)
        except TimeoutError as exc:
            failures = self.runtime.failures()[-3:] if self.runtime else []
            detail = "; ".join(f"{f.function}: {f.error}" for f in failures) or "no function failed"
            raise TimeoutError(f"jobs did not finish within {timeout:.0f} s ({detail})") from exc

    def _when_written(self, settled: Callable[[], Any], timeout: float) -> Any:
        """``settled()`` once, then again after each write to the jobs table (a job's status is one) or
        every second, until it returns something; TimeoutError after ``timeout``. The table is read at
        most every 50 ms: a burst of writes (chunks counted by workers) is read once, and a write after a
        quiet spell (a job's last status) at once."""
        writes, table = self.endpoint.table_writes, self.outputs["JobsTableName"]
        deadline = time.monotonic() + timeout
        while True:
            seen = writes.seen(table)
            read = time.monotonic()
            value = settled()
            if value:
                return value
            if read > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f} s")
            writes.wait_after(seen, 1.0, table)
            time.sleep(max(0.0, read + 0.05 - time.monotonic()))  # at most a read every 50 ms

    # ------------------------------------------------------------------ reading

    def jobs(self) -> list[dict[str, Any]]:
        """Every job (not the table's per-route markers, whose keys start with ``#``). Waiters woken by
        the same write (the demo's jobs and its retrain) share one read of the table."""
        table = self.outputs["JobsTableName"]
        with self._jobs_lock:
            written = self.endpoint.table_writes.seen(table)  # before the read: a write during it is new
            if self._jobs_read is None or self._jobs_read[0] != written:
                jobs = [job for job in self._scan(table) if not job["jobName"].startswith("#")]
                self._jobs_read = (written, jobs)
            return [dict(job) for job in self._jobs_read[1]]

    def records(self) -> list[dict[str, Any]]:
        return sorted(self._scan(self.outputs["RecommendationsTableName"]), key=lambda r: (r["sk"], r["pk"]))

    def read(self, key: str) -> bytes:
        return self.endpoint.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str) -> list[str]:
        paginator = self.endpoint.client("s3").get_paginator("list_objects_v2")
        return [
            item["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        ]

    def dump(self, directory: Path) -> None:
        """What a user would inspect: the tables as JSON Lines and the reports as files."""
        directory.mkdir(parents=True, exist_ok=True)
        _write_jsonl(directory / "records.jsonl", self.records())
        _write_jsonl(directory / "jobs.jsonl", sorted(self.jobs(), key=lambda job: job["createdAt"]))
        _write_jsonl(directory / "contacts.jsonl", self.contacts())
        for prefix in (layout.REPORTS, layout.REJECTED):
            for key in self.keys(prefix):
                target = directory / dump_path(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read(key))

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact of the stack's contact list with its topic preferences and attributes."""
        ses = self.endpoint.client("sesv2")
        name = self.outputs["ContactListName"]
        contacts = []
        for listed in ses.list_contacts(ContactListName=name)["Contacts"]:
            contact = ses.get_contact(ContactListName=name, EmailAddress=listed["EmailAddress"])
            contacts.append(
                {
                    "emailAddress": contact["EmailAddress"],
                    "unsubscribeAll": contact.get("UnsubscribeAll", False),
                    "topicPreferences": {
                        p["TopicName"]: p["SubscriptionStatus"] for p in contact.get("TopicPreferences") or []
                    },
                    "attributes": json.loads(contact["AttributesData"])
                    if contact.get("AttributesData")
                    else None,
                }
            )
        return sorted(contacts, key=lambda contact: contact["emailAddress"])

    def recipient_unsubscribes(self, email: str, topic: str | None = None) -> None:
        """What SES does when a recipient follows the unsubscribe link of a campaign e-mail sent with the
        stack's configuration set: the contact opts out of ``topic`` (of everything when None), and, as
        the set publishes Subscription events to EventBridge, SES puts one on the default bus."""
        ses = self.endpoint.client("sesv2")
        name = self.outputs["ContactListName"]
        contact = ses.get_contact(ContactListName=name, EmailAddress=email)
        old = {p["TopicName"]: p["SubscriptionStatus"] for p in contact.get("TopicPreferences") or []}
        new = {**old, **({topic: "OPT_OUT"} if topic else {})}
        unsubscribe_all = topic is None or bool(contact.get("UnsubscribeAll"))
        ses.update_contact(
            ContactListName=name,
            EmailAddress=email,
            UnsubscribeAll=unsubscribe_all,
            TopicPreferences=[{"TopicName": t, "SubscriptionStatus": s} for t, s in sorted(new.items())],
            **({"AttributesData": contact["AttributesData"]} if contact.get("AttributesData") else {}),
        )
        assert self.stack is not None
        configuration_set = self.outputs["CampaignConfigurationSetName"]
        if configuration_set not in self.stack.subscription_events:
            return  # the set sends no Subscription events: SES changes the contact and says nothing

        def preferences(everything: bool, topics: dict[str, str]) -> dict[str, Any]:
            statuses = {"OPT_IN": "OptIn", "OPT_OUT": "OptOut"}  # the event's spelling, not the API's
            return {
                "unsubscribeAll": everything,
                "topicSubscriptionStatus": [
                    {"topicName": t, "subscriptionStatus": statuses[s]} for t, s in sorted(topics.items())
                ],
            }

        now = datetime.now(UTC)
        detail = {
            "eventType": "Subscription",
            "mail": {"timestamp": now.isoformat(), "destination": [email], "tags": {}},
            "subscription": {
                "contactList": name,
                "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "source": "UnsubscribeHeader",
                "newTopicPreferences": preferences(unsubscribe_all, new),
                "oldTopicPreferences": preferences(bool(contact.get("UnsubscribeAll")), old),
            },
        }
        entry = {"Source": "aws.ses", "DetailType": "Email Subscribed", "Detail": json.dumps(detail)}
        failed = self.endpoint.client("events").put_events(Entries=[{**entry, "EventBusName": "default"}])
        if failed.get("FailedEntryCount"):
            raise RuntimeError(f"the Subscription event was not put: {failed['Entries']}")

    def _scan(self, table: str) -> list[dict[str, Any]]:
        paginator = self.endpoint.client("dynamodb").get_paginator("scan")
        return [
            {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}
            for page in paginator.paginate(TableName=table)
            for item in page.get("Items", [])
        ]


def data_key_policy(account: str, personalize_role_arn: str) -> dict[str, Any]:
    """The key policy a DataKmsKeyArn needs (README, "Encryption with your KMS key"): the account's IAM
    policies decide for its functions; Personalize and its role may use the key for batch jobs ("Giving
    Amazon Personalize permission to use your AWS KMS key"); SES may decrypt the contact import files."""
    this_account = {"StringEquals": {"aws:SourceAccount": account}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EnableIamPolicies",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "PersonalizeBatchJobs",
                "Effect": "Allow",
                "Principal": {"AWS": personalize_role_arn, "Service": "personalize.amazonaws.com"},
                "Action": [
                    "kms:Decrypt",
                    "kms:GenerateDataKey",
                    "kms:DescribeKey",
                    "kms:CreateGrant",
                    "kms:ListGrants",
                ],
                "Resource": "*",
            },
            {
                "Sid": "SesContactImports",
                "Effect": "Allow",
                "Principal": {"Service": "ses.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": this_account,
            },
        ],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, set):
        return sorted(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def dump_path(key: str) -> str:
    """A relative path for an S3 key that stays inside the dump folder: S3 keys may hold ``..``, ``.``
    and empty segments, which are plain names there (written as ``%2E%2E``, ``%2E``, ``%``)."""
    special = {"..": "%2E%2E", ".": "%2E", "": "%"}
    return "/".join(special.get(part, part) for part in key.split("/"))


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(row, option=orjson.OPT_SORT_KEYS) + b"\n" for row in rows))


DIRECTORY_USERS = 100  # the local user directory knows users "1".."100" (the samples use 1-42)
NO_ADDRESS_EVERY = 10  # users 10, 20, ... have no address in it
UNSUBSCRIBED_ALL = "user3@example.com"  # already a contact, unsubscribed from everything
OPTED_OUT_WEEKLY = "user4@example.com"  # already a contact, opted out of weekly-picks


def seed_people(endpoint: LocalEndpoint, outputs: dict[str, str]) -> None:
    """The local user directory and two contacts who opted out, so SES routes have something to keep.

    Users 1..DIRECTORY_USERS but each NO_ADDRESS_EVERY-th have the address ``user<id>@example.com``.
    """
    table = outputs["UserDirectoryTableName"]
    ddb = endpoint.client("dynamodb")
    users = [str(user) for user in range(1, DIRECTORY_USERS + 1) if user % NO_ADDRESS_EVERY]
    for start in range(0, len(users), 25):
        ddb.batch_write_item(
            RequestItems={
                table: [
                    {
                        "PutRequest": {
                            "Item": {"userId": {"S": user}, "email": {"S": f"user{user}@example.com"}}
                        }
                    }
                    for user in users[start : start + 25]
                ]
            }
        )
    ses, name = endpoint.client("sesv2"), outputs["ContactListName"]
    ses.create_contact(ContactListName=name, EmailAddress=UNSUBSCRIBED_ALL, UnsubscribeAll=True)
    ses.create_contact(
        ContactListName=name,
        EmailAddress=OPTED_OUT_WEEKLY,
        TopicPreferences=[{"TopicName": "weekly-picks", "SubscriptionStatus": "OPT_OUT"}],
    )


def samples_dir(template: Path | None = None) -> Path:
    """The project's sample files, beside its template."""
    return find_template(template).parent / "samples"


def elapsed(start: float) -> str:
    return f"{time.monotonic() - start:.1f}s"
