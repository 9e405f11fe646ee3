"""``make chaos``: the pipeline on the local cloud under injected faults, one table of what happened.

Each scenario runs one upload of its own route (a user-personalization route exporting to DynamoDB,
so records of different scenarios never meet) while the local endpoint injects a fault (see
``faults``) or the harness delivers something twice, then waits for the job to end and measures:

    injected    how many times the fault was met (or a duplicate delivered)
    outcome     the job's final status
    lost        users whose output line had recommendations but who have no record of that job (DynamoDB)
    duplicates  completion events beyond one per job (consumers must be idempotent, but one is expected)
    stuck       jobs that did not reach a final status within the wait
    overridden  opt-outs an SES import put back to OPT_IN

Faults are injected at the wire, exactly as AWS would answer; the code under test is the shipped
handlers running with their template roles. ``--short`` runs the scenarios CI runs.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from batchrecs.jobs.model import CREATE_FAILED, EXPORTED

from batchrecs_local.faults import Fault
from batchrecs_local.iam.identity import function_key
from batchrecs_local.personalize.emulator import Timings
from batchrecs_local.session import FINAL_STATUSES, LocalCloud, Options, samples_dir

USERS = 43  # samples/home/users.jsonl
WAIT_SECONDS = 120
SUBMIT, MONITOR, WORKER = (
    function_key(f) for f in ("SubmitFunction", "MonitorFunction", "ExportWorkerFunction")
)


@dataclass
class Row:
    fault: str
    where: str
    injected: int = 0
    outcome: str = ""
    lost: int = 0
    duplicates: int = 0
    stuck: int = 0
    overridden: int = 0  # opt-outs an import put back to OPT_IN
    notes: list[str] = field(default_factory=list)  # what went wrong beyond the counts
    seen: list[str] = field(default_factory=list)  # what the pipeline did about the fault (not a problem)

    @property
    def clean(self) -> bool:
        counts = (self.lost, self.duplicates, self.stuck, self.overridden)
        return counts == (0, 0, 0, 0) and not self.notes


@dataclass
class Scenario:
    fault: str
    where: str
    run: Callable[[Chaos, str, Row], list[str]] | None = None  # the source keys of the jobs to wait for
    inject: Fault | None = None  # else: an upload of the route while this fault is on
    expected: str = EXPORTED
    short: bool = True


class Chaos:
    """One local cloud for every scenario; each scenario has its own route ``c<N>``."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.cloud = cloud
        self.faults = cloud.endpoint.faults
        events, sqs = cloud.endpoint.client("events"), cloud.endpoint.client("sqs")
        self.tap = sqs.create_queue(QueueName="chaos-tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self.tap, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = cloud.outputs["EventBusName"]
        events.put_rule(
            Name="chaos-tap", EventBusName=bus, EventPattern=json.dumps({"source": ["batchrecs"]})
        )
        events.put_targets(Rule="chaos-tap", EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
        self.events: list[dict[str, Any]] = []

    def upload(self, route: str, body: bytes | None = None, name: str = "users.jsonl") -> str:
        key = f"input/{route}/{name}"
        data = body if body is not None else (samples_dir() / "home" / "users.jsonl").read_bytes()
        self.cloud.endpoint.client("s3").put_object(Bucket=self.cloud.bucket, Key=key, Body=data)
        return key

    def published(self) -> list[dict[str, Any]]:
        sqs = self.cloud.endpoint.client("sqs")
        while messages := sqs.receive_message(QueueUrl=self.tap, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self.events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.tap, ReceiptHandle=message["ReceiptHandle"])
        return self.events

    def job_of(self, key: str) -> dict[str, Any]:
        [job] = [job for job in self.cloud.jobs() if job["sourceKey"] == key]
        return job

    def measure(self, row: Row, keys: list[str], expected: str) -> None:
        try:
            jobs = self.cloud.wait_for(keys, WAIT_SECONDS)
        except TimeoutError:
            jobs = {job["sourceKey"]: job for job in self.cloud.jobs() if job["sourceKey"] in keys}
        finals = sorted({job["status"] for job in jobs.values()})
        row.outcome = ", ".join(finals) or "no job"
        row.stuck += sum(1 for job in jobs.values() if job["status"] not in FINAL_STATUSES)
        row.stuck += len(keys) - len(jobs)
        if finals != [expected]:
            row.notes.append(f"expected {expected}")
        time.sleep(1)  # the last events reach the tap
        completions: dict[str, int] = {}
        for event in self.published():
            if event["detail-type"] == "Batch Export Completed":
                completions[event["detail"]["jobName"]] = completions.get(event["detail"]["jobName"], 0) + 1
        records = self.cloud.records()
        for job in jobs.values():
            row.duplicates += max(0, completions.get(job["jobName"], 0) - 1)
            to_dynamodb = (
                json.loads(job.get("routeSnapshot") or "{}").get("destination", {}).get("type") == "dynamodb"
            )
            if job["status"] == EXPORTED and not job.get("exportSuperseded") and to_dynamodb:
                row.lost += len(
                    self.expected_users(job) - {r["pk"] for r in records if r["jobName"] == job["jobName"]}
                )

    def expected_users(self, job: dict[str, Any]) -> set[str]:
        """Users whose output line has recommendations (what the export must write)."""
        prefix = job["outputPath"].removeprefix(f"s3://{self.cloud.bucket}/")
        users = set()
        for key in self.cloud.keys(prefix):
            for line in self.cloud.read(key).splitlines():
                value = orjson.loads(line)
                if not value.get("error") and value["output"].get("recommendedItems"):
                    users.add(value["input"]["userId"])
        return users


# --------------------------------------------------------------------------- scenarios


def _duplicate_s3_event(chaos: Chaos, route: str, row: Row) -> list[str]:
    key = chaos.upload(route)
    chaos.cloud.wait_for([key], WAIT_SECONDS)
    head = chaos.cloud.endpoint.client("s3").head_object(Bucket=chaos.cloud.bucket, Key=key)
    event = {
        "version": "0",
        "id": "chaos-duplicate",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-02T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0",
            "bucket": {"name": chaos.cloud.bucket},
            "object": {
                "key": key,
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "sequencer": "617f08299329d189",
                "version-id": head.get("VersionId", "null"),
            },
            "reason": "PutObject",
            "request-id": "chaos",
            "requester": "123456789012",
        },
    }  # as moto sent it: the same sequencer and version id
    assert chaos.cloud.runtime is not None
    for _ in range(2):
        chaos.cloud.runtime.invoke("SubmitFunction", event)
        row.injected += 1
    return [key]


def _duplicate_active_event(chaos: Chaos, route: str, row: Row) -> list[str]:
    from batchrecs.aws.events import EventBridgePublisher
    from batchrecs.formats.events import JOB_STATE_CHANGE, JobStateChange

    key = chaos.upload(route)
    chaos.cloud.wait_for([key], WAIT_SECONDS)
    job = chaos.job_of(key)
    change = JobStateChange(
        jobName=job["jobName"], jobArn=job.get("jobArn"), route=route, kind=job["kind"], status="ACTIVE",
        outputPath=job["outputPath"],
    )  # fmt: skip
    publisher = EventBridgePublisher(
        chaos.cloud.outputs["EventBusName"], chaos.cloud.endpoint.client("events")
    )
    for _ in range(2):
        publisher.publish(JOB_STATE_CHANGE, change)
        row.injected += 1
    time.sleep(3)  # the planner runs on them
    return [key]


def _duplicate_chunks(chaos: Chaos, route: str, row: Row) -> list[str]:
    from batchrecs.aws.s3 import S3Objects
    from batchrecs.export.plan import ExportPlan, message_group

    key = chaos.upload(route)
    chaos.cloud.wait_for([key], WAIT_SECONDS)
    job = chaos.job_of(key)
    bucket, _, prefix = job["outputPath"].removeprefix("s3://").partition("/")
    files = S3Objects(chaos.cloud.endpoint.client("s3")).list_objects(bucket, prefix, ".out")
    plan = ExportPlan(
        job["jobName"], route, bucket, job["generatedAt"], chaos.cloud.options.chunk_bytes, files
    )
    messages = plan.messages(None)
    sqs = chaos.cloud.endpoint.client("sqs")
    for message in messages:  # every chunk delivered again (a new deduplication id, as a redrive sends)
        sqs.send_message(
            QueueUrl=chaos.cloud.outputs["ChunksQueueUrl"], MessageBody=message.model_dump_json(),
            MessageGroupId=message_group(message), MessageDeduplicationId=f"chaos.{message.chunkId}",
        )  # fmt: skip
        row.injected += 1
    time.sleep(3)  # the workers take them
    return [key]


def _two_uploads_to_one_key(chaos: Chaos, route: str, row: Row) -> list[str]:
    first = b"".join(b'{"userId": "%d"}\n' % user for user in range(1, 21))
    second = b"".join(b'{"userId": "%d"}\n' % user for user in range(21, 41))
    key = chaos.upload(route, first)
    chaos.upload(route, second)
    row.injected = 1
    deadline = time.monotonic() + WAIT_SECONDS
    jobs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # both jobs ended (measure waits for one job per key)
        jobs = [j for j in chaos.cloud.jobs() if j["sourceKey"] == key]
        if len(jobs) == 2 and all(j["status"] in FINAL_STATUSES for j in jobs):
            break
        time.sleep(0.5)
    row.stuck += sum(1 for j in jobs if j["status"] not in FINAL_STATUSES) + 2 - len(jobs)
    staged = sorted(
        chaos.cloud.read(j["stagedPath"].removeprefix(f"s3://{chaos.cloud.bucket}/")) for j in jobs
    )
    if staged != sorted([first.replace(b": ", b":"), second.replace(b": ", b":")]):
        row.lost += 1
        row.notes.append("a job did not read the version its event named")
    return [key]


def _route_deleted_mid_export(chaos: Chaos, route: str, row: Row) -> list[str]:
    """The route is taken out of the routes file (and every function starts cold with the new file)
    once its job is running in Personalize: the job keeps the route it was submitted with."""
    from batchrecs_local.runtime import _cold_start

    key = chaos.upload(route)
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        jobs = [job for job in chaos.cloud.jobs() if job["sourceKey"] == key]
        if jobs and jobs[0]["status"] not in ("RECEIVED", "QUEUED"):
            break
        time.sleep(0.2)
    routes = chaos.cloud.options.routes_file
    assert routes is not None
    text = routes.read_text()
    start = text.index(f"  {route}:\n")
    following = re.search(r"\n  \S", text[start:])  # the next route's entry
    routes.write_text(text[:start] + (text[start + following.start() + 1 :] if following else ""))
    _cold_start()  # new containers read the new routes file
    row.injected = 1
    return [key]


OPTING_OUT = "user5@example.com"  # in the local user directory (seed_people)


def _opt_out_during_import(chaos: Chaos, route: str, row: Row) -> list[str]:
    """A subscribed contact opts out (SES's unsubscribe link) after the monitor read the list's
    preferences and before SES processed the import file: an import PUT cannot be conditional, so the
    import subscribes it again, and the monitor must put the opt-out back from the preference ledger."""
    ses = chaos.cloud.endpoint.client("sesv2")
    contact_list = chaos.cloud.outputs["ContactListName"]
    subscribed = [{"TopicName": "weekly-picks", "SubscriptionStatus": "OPT_IN"}]
    ses.create_contact(ContactListName=contact_list, EmailAddress=OPTING_OUT, TopicPreferences=subscribed)
    started = {job["JobId"] for job in ses.list_import_jobs()["ImportJobs"]}
    key = chaos.upload("ses")
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:  # the import job is created: SES has not processed it yet
        if {job["JobId"] for job in ses.list_import_jobs()["ImportJobs"]} - started:
            break
        time.sleep(0.05)
    chaos.cloud.recipient_unsubscribes(OPTING_OUT, "weekly-picks")  # SES's unsubscribe link
    row.injected = 1
    chaos.cloud.wait_for([key], WAIT_SECONDS)
    time.sleep(1)  # the import job has ended with the export
    now = ses.get_contact(ContactListName=contact_list, EmailAddress=OPTING_OUT)["TopicPreferences"]
    row.overridden = int({"TopicName": "weekly-picks", "SubscriptionStatus": "OPT_IN"} in now)
    for job in chaos.cloud.jobs():
        restored = (job.get("contactImport") or {}).get("optOutsRestored") if job["sourceKey"] == key else 0
        if restored:
            row.seen.append(f"{restored} opt-out put back from the preference ledger")
    return [key]


def _monitor_dies_recording_imports(chaos: Chaos, route: str, row: Row) -> list[str]:
    """The monitor starts an export's SES import jobs, then its writes to the jobs table fail (all of
    botocore's retries): the imports it started are not recorded, so a later tick starts them again."""
    ses = chaos.cloud.endpoint.client("sesv2")
    before = len(ses.list_import_jobs()["ImportJobs"])
    fault = chaos.faults.add(
        Fault(
            "dynamodb",
            "PutItem",
            500,
            "InternalServerError",
            times=12,
            caller=MONITOR,
            armed_by=("ses", "POST", "/v2/email/import-jobs"),
        )
    )
    key = chaos.upload("ses", name="recorded.jsonl")  # a file of its own: no older upload supersedes it
    chaos.cloud.wait_for([key], WAIT_SECONDS)
    row.injected = fault.injected
    if not fault.injected:
        row.notes.append("the fault was never met")
    started = len(ses.list_import_jobs()["ImportJobs"]) - before
    row.seen.append(f"{started} import jobs for 1 import file (started again: their record was lost)")
    return [key]


def _broken_route(chaos: Chaos, route: str, row: Row) -> list[str]:
    return [chaos.upload("broken")]


def _injected(where: str, fault: str, caller: str, **fault_args: Any) -> Scenario:
    """A scenario that uploads a file of its route while one fault is on."""
    service, operation, status, code = fault_args.pop("wire")
    short = fault_args.pop("short", True)
    inject = Fault(service, operation, status, code, caller=caller, **fault_args)
    return Scenario(fault, where, inject=inject, short=short)


def _scenarios() -> list[Scenario]:
    throttled = ("dynamodb", "BatchWriteItem", 400, "ProvisionedThroughputExceededException")
    failing = ("dynamodb", "BatchWriteItem", 500, "InternalServerError")
    invalid = ("dynamodb", "BatchWriteItem", 400, "ValidationException")
    slow_down = ("s3", "GetObject", 503, "SlowDown")
    cut = ("s3", "GetObject", 200, "")  # the real answer, its body cut: the connection drops
    # fmt: off
    return [
        Scenario("duplicate S3 event", "submit", _duplicate_s3_event, short=False),
        Scenario("duplicate ACTIVE event", "planner", _duplicate_active_event, short=False),
        Scenario("duplicate chunk messages", "workers", _duplicate_chunks),
        _injected("workers", "DynamoDB throttling", WORKER, wire=throttled, times=20),
        _injected("workers", "DynamoDB 500", WORKER, wire=failing, times=20, short=False),
        _injected("workers (a write fails for good after 2 went through)", "worker dies mid-chunk", WORKER,
                  wire=invalid, times=1, after=2),
        _injected("submit (reading the upload)", "S3 503 SlowDown", SUBMIT, wire=slow_down, times=6,
                  key_prefix="input/"),
        _injected("workers (reading the output)", "S3 503 SlowDown", WORKER, wire=slow_down, times=6,
                  key_prefix="output/", short=False),
        _injected("submit (reading the upload)", "S3 connection drops mid-stream", SUBMIT, wire=cut, times=2,
                  key_prefix="input/", cut_after=100),
        _injected("workers (reading the output)", "S3 connection drops mid-stream", WORKER, wire=cut, times=3,
                  key_prefix="output/", cut_after=200, short=False),
        _injected("submit (CreateBatchInferenceJob)", "Personalize throttling", SUBMIT,
                  wire=("personalize", "CreateBatchInferenceJob", 400, "ThrottlingException"), times=6),
        _injected("monitor (DescribeBatchInferenceJob)", "Personalize throttling", MONITOR,
                  wire=("personalize", "DescribeBatchInferenceJob", 400, "ThrottlingException"), times=8,
                  short=False),
        _injected("monitor (its job-table writes fail)", "monitor dies mid-tick", MONITOR,
                  wire=("dynamodb", "PutItem", 500, "InternalServerError"), times=12),
        Scenario("two uploads to one key", "submit", _two_uploads_to_one_key, short=False),
        Scenario("route deleted mid-export", "routes file", _route_deleted_mid_export, short=False),
        Scenario("opt-out during an SES import", "monitor and SES", _opt_out_during_import),
        Scenario("monitor dies mid-tick", "monitor (after starting SES imports, before recording them)",
                 _monitor_dies_recording_imports, short=False),
        Scenario("CREATE FAILED", "Personalize (wrong recipe)", _broken_route, expected=CREATE_FAILED,
                 short=False),
    ]
    # fmt: on


def _routes_file(count: int, directory: Path) -> Path:
    """One route per scenario (their records never meet), and one whose solution is the wrong recipe."""
    lines = ["routes:"]
    for number in range(1, count + 1):
        lines += [
            f"  c{number:02d}:",
            "    kind: user-personalization",
            "    solutionVersionArn: ${USER_PERSONALIZATION_SOLUTION_VERSION_ARN}",
            "    destination: {type: dynamodb}",
        ]
    lines += [
        "  ses:",  # as the shipped weekly-email route: the directory's addresses, topic weekly-picks
        "    kind: user-personalization",
        "    solutionVersionArn: ${USER_PERSONALIZATION_SOLUTION_VERSION_ARN}",
        "    destination: {type: ses, contactList: '${SES_CONTACT_LIST_NAME}', topic: weekly-picks,",
        "                  address: {type: directory, table: '${USER_DIRECTORY_TABLE}'}}",
        "  broken:",
        "    kind: user-personalization",
        "    solutionVersionArn: ${RELATED_ITEMS_SOLUTION_VERSION_ARN}",
        "    destination: {type: dynamodb}",
    ]
    path = directory / "chaos-routes.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(short: bool = False, report: Callable[[Row], None] | None = None) -> list[Row]:
    scenarios = [s for s in _scenarios() if s.short or not short]
    with tempfile.TemporaryDirectory(prefix="batchrecs-chaos-") as tmp:
        options = Options(
            routes_file=_routes_file(len(scenarios), Path(tmp)),
            timings=Timings(pending=0.2, running=0.5),
            tick_seconds=0.5,
            chunk_bytes=512,  # every upload fans out over several chunks
        )
        rows = []
        with LocalCloud(options) as cloud:
            chaos = Chaos(cloud)
            for number, scenario in enumerate(scenarios, 1):
                row = Row(scenario.fault, scenario.where)
                chaos.faults.clear()
                route = f"c{number:02d}"
                if scenario.inject is not None:
                    chaos.faults.add(scenario.inject)
                keys = scenario.run(chaos, route, row) if scenario.run else [chaos.upload(route)]
                chaos.measure(row, keys, scenario.expected)
                if scenario.inject is not None:
                    row.injected = scenario.inject.injected
                    if not row.injected:
                        row.notes.append("the fault was never met")
                rows.append(row)
                if report is not None:
                    report(row)
        return rows


def table(rows: list[Row]) -> str:
    header = (
        "fault",
        "where",
        "injected",
        "outcome",
        "lost",
        "duplicates",
        "stuck",
        "opt-outs overridden",
        "notes",
    )
    body = [
        (
            r.fault,
            r.where,
            str(r.injected),
            r.outcome,
            str(r.lost),
            str(r.duplicates),
            str(r.stuck),
            str(r.overridden),
            "; ".join([*r.notes, *r.seen]),
        )
        for r in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        for cells in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
