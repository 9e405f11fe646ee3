"""The submitter's, monitor's, planner's and worker's rules, on recording fakes of their ports (no
network, no moto): the rules that only the moto integration tests caught before."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from batchrecs.errors import (
    ExportError,
    PersonalizeLimitExceeded,
    PersonalizeRejected,
    PersonalizeUnavailable,
)
from batchrecs.export.planner import ExportPlanner
from batchrecs.export.worker import ChunkExporter, retry_delay
from batchrecs.formats.events import EXPORT_COMPLETED, JOB_STATE_CHANGE, JOB_STUCK, JobStateChange
from batchrecs.jobs.model import (
    ACTIVE,
    CREATE_FAILED,
    CREATE_PENDING,
    EXPORT_FAILED,
    EXPORTED,
    EXPORTING,
    IMPORTING,
    QUEUED,
    RECEIVED,
    REJECTED,
    Job,
)
from batchrecs.monitor.service import Monitor
from batchrecs.routes.config import parse_routes, snapshot
from batchrecs.submit.service import Submitter, Upload

from tests.fakes import FakeDestination, FakeEvents, FakeJobStore, FakeObjects, FakePersonalize, FakeQueue

ARN = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
ROUTES = parse_routes(
    f"""
routes:
  home:
    kind: user-personalization
    solutionVersionArn: {ARN}
    numResults: 5
    destination: {{type: dynamodb}}
  limited:
    kind: user-personalization
    solutionVersionArn: {ARN}
    maxExportWorkers: 2
    destination: {{type: dynamodb}}
""",
    {},
)
NOW = "2026-11-23T10:00:00Z"
BUCKET = "data"


def _line(user: str) -> bytes:
    return orjson.dumps(
        {"input": {"userId": user}, "output": {"recommendedItems": ["1", "2"]}, "error": None}
    )


OUT = b"\n".join(_line(str(user)) for user in range(1, 41)) + b"\n"  # 40 lines, 3,151 bytes
CHUNKS = [f"0.{i}" for i in range(-(-len(OUT) // 1024))]  # 1 KiB ranges: 4


def _job(route: str = "home", status: str = ACTIVE, **fields: object) -> Job:
    return Job(
        jobName=f"{route}-1",
        route=route,
        kind="user-personalization",
        status=status,
        sourceBucket=BUCKET,
        sourceKey=f"input/{route}/u.jsonl",
        sourceIdentity="x",
        createdAt=NOW,
        updatedAt=NOW,
        outputPath=f"s3://{BUCKET}/output/{route}/{route}-1/",
        **fields,  # type: ignore[arg-type]
    )


def _planned(
    route: str = "home", chunk_bytes: int = 1024, **job_fields: object
) -> tuple[FakeJobStore, FakeObjects, FakeQueue, FakeEvents]:
    jobs, objects, queue, events = (
        FakeJobStore(_job(route, **job_fields)),
        FakeObjects(),
        FakeQueue(),
        FakeEvents(),
    )
    objects.put(BUCKET, f"output/{route}/{route}-1/u.jsonl.out", OUT)
    planner = ExportPlanner(ROUTES, jobs, objects, queue, events, chunk_bytes=chunk_bytes, clock=lambda: NOW)
    planner.handle(JobStateChange(jobName=f"{route}-1", route=route, status=ACTIVE), datetime.now(UTC))
    return jobs, objects, queue, events


# ------------------------------------------------------------------ planner


def test_the_planner_records_the_chunk_total_once_and_sends_every_chunk() -> None:
    jobs, _, queue, _ = _planned()
    job = jobs.get("home-1")
    assert job is not None and job.status == EXPORTING
    assert job.chunksTotal == len(queue.sent) == len(CHUNKS) == 4
    assert [m.chunkId for m in queue.sent] == CHUNKS
    assert all(m.group is None for m in queue.sent)


def test_an_active_event_that_comes_before_the_monitor_saved_active_still_shows_in_the_history() -> None:
    # Given a job the monitor saw end: it published ACTIVE first and has not saved it yet
    jobs, _, _, _ = _planned(
        status="CREATE IN_PROGRESS", history=[{"status": "CREATE IN_PROGRESS", "at": NOW}]
    )
    # Then the planner that won the race records the ACTIVE step before EXPORTING (`local up` and
    # `batchrecs show` print each status from the history)
    job = jobs.get("home-1")
    assert job is not None and job.status == EXPORTING
    assert [entry["status"] for entry in job.history or []] == ["CREATE IN_PROGRESS", "ACTIVE", "EXPORTING"]


def test_a_redelivered_active_event_sends_only_the_chunks_not_counted_yet() -> None:
    jobs, objects, queue, events = _planned()
    jobs.record_chunk("home-1", "0.1", {"lines": 1})
    planner = ExportPlanner(ROUTES, jobs, objects, queue, events, chunk_bytes=1024, clock=lambda: NOW)
    planner.handle(JobStateChange(jobName="home-1", route="home", status=ACTIVE), datetime.now(UTC))
    assert [m.chunkId for m in queue.sent] == [*CHUNKS, "0.0", "0.2", "0.3"]
    assert jobs.get("home-1").chunksTotal == 4  # type: ignore[union-attr]


def test_a_limited_route_spreads_its_chunks_over_its_groups() -> None:
    _, _, queue, _ = _planned("limited")
    assert [m.group for m in queue.sent] == ["limited.0", "limited.1", "limited.0", "limited.1"]


def test_a_job_without_output_fails_its_export_visibly_once_without_raising() -> None:
    jobs, objects, queue, events = FakeJobStore(_job()), FakeObjects(), FakeQueue(), FakeEvents()
    planner = ExportPlanner(ROUTES, jobs, objects, queue, events, clock=lambda: NOW)
    failed = planner.handle(JobStateChange(jobName="home-1", route="home", status=ACTIVE), datetime.now(UTC))
    assert failed.status == EXPORT_FAILED and "no .out files" in (failed.failureReason or "")
    assert jobs.get("home-1").status == EXPORT_FAILED  # type: ignore[union-attr]
    [completed] = events.of(EXPORT_COMPLETED)
    assert (completed["status"], queue.sent) == (EXPORT_FAILED, [])


def test_a_job_exports_with_the_route_it_was_submitted_with_even_once_the_route_is_gone() -> None:
    # Given a job submitted on route "limited" (2 export workers), whose route is then deleted
    job = _job(route="limited").model_copy(update={"routeSnapshot": snapshot(ROUTES.get("limited"))})
    jobs, objects, queue, events = FakeJobStore(job), FakeObjects(), FakeQueue(), FakeEvents()
    objects.put(BUCKET, "output/limited/limited-1/u.jsonl.out", OUT)
    now = parse_routes(
        f"routes:\n  home: {{kind: popularity, solutionVersionArn: '{ARN}', destination: {{type: dynamodb}}}}\n",
        {},
    )
    assert "limited" not in now.routes
    # When its export is planned and its chunks written
    planner = ExportPlanner(now, jobs, objects, queue, events, clock=lambda: NOW)
    planner.handle(JobStateChange(jobName="limited-1", route="limited", status=ACTIVE), datetime.now(UTC))
    destination = FakeDestination()
    worker = ChunkExporter(now, jobs, objects, events, lambda route: destination, 3, FakeQueue(), lambda: NOW)
    for message in queue.sent:
        worker.handle(message)
    # Then it used its snapshot (its groups) and finished, with no failure
    assert {m.group for m in queue.sent} <= {"limited.0", "limited.1"}
    assert jobs.get("limited-1").status == EXPORTED  # type: ignore[union-attr]
    assert [key for _, lines in destination.chunks for _, key in lines] == [str(u) for u in range(1, 41)]


# ------------------------------------------------------------------ worker


def _worker(
    jobs: FakeJobStore,
    objects: FakeObjects,
    events: FakeEvents,
    destination: FakeDestination,
    queue: FakeQueue | None = None,
) -> ChunkExporter:
    return ChunkExporter(
        ROUTES,
        jobs,
        objects,
        events,
        lambda route: destination,
        max_receives=3,
        queue=queue or FakeQueue(),
        clock=lambda: NOW,
    )


def test_each_chunk_hands_its_own_lines_to_the_destination_and_the_last_one_finishes_the_job() -> None:
    jobs, objects, queue, events = _planned()
    destination = FakeDestination()
    worker = _worker(jobs, objects, events, destination)
    for message in queue.sent:
        worker.handle(message)
    # every line went to exactly one chunk, in order
    users = [key for _, lines in destination.chunks for _, key in lines]
    assert users == [str(user) for user in range(1, 41)]
    job = jobs.get("home-1")
    assert job is not None
    assert (job.status, job.exportLines, job.exportWritten, job.exportRecords) == (EXPORTED, 40, 40, 40)
    [completed] = events.of(EXPORT_COMPLETED)
    assert (completed["status"], completed["lines"], completed["linesWritten"]) == (EXPORTED, 40, 40)


def test_a_redelivered_chunk_is_counted_once() -> None:
    jobs, objects, queue, events = _planned()
    worker = _worker(jobs, objects, events, FakeDestination())
    first = worker.handle(queue.sent[0])
    again = worker.handle(queue.sent[0])
    assert first is not None and again is None
    assert jobs.get("home-1").exportLines == first.lines  # type: ignore[union-attr]


def test_lines_the_destination_cannot_use_are_failed_and_reported_with_their_offsets() -> None:
    jobs, objects, queue, events = _planned(chunk_bytes=1 << 20)
    worker = _worker(jobs, objects, events, FakeDestination(fail_on={"7"}))
    counts = worker.handle(queue.sent[0])
    assert counts is not None and (counts.lines, counts.failed, counts.written) == (40, 1, 39)
    [report] = [key for (_, key) in objects.data if key.startswith("reports/home-1/errors/")]
    [entry] = [orjson.loads(line) for line in objects.read(BUCKET, report).splitlines()]
    assert entry == {
        "file": "output/home/home-1/u.jsonl.out",
        "offset": OUT.index(_line("7")),
        "reason": "7 is not wanted here",
    }


def test_a_destination_that_goes_on_leaves_the_job_importing_without_a_completion_event() -> None:
    jobs, objects, queue, events = _planned(chunk_bytes=1 << 20)
    _worker(jobs, objects, events, FakeDestination(goes_on=IMPORTING)).handle(queue.sent[0])
    job = jobs.get("home-1")
    assert job is not None and (job.status, job.inflight) == (IMPORTING, "IMPORTING")
    assert events.of(EXPORT_COMPLETED) == []


def test_a_chunk_failing_on_its_last_receive_fails_the_job_and_says_so() -> None:
    jobs, objects, queue, events = _planned(chunk_bytes=1 << 20)
    objects.put(BUCKET, "output/home/home-1/u.jsonl.out", OUT + _line("41"))  # changed after planning
    worker = _worker(jobs, objects, events, FakeDestination(), queue)
    with pytest.raises(ExportError, match="changed"):
        worker.handle_delivery(queue.sent[0], receive_count=2, receipt_handle="r-2")
    job = jobs.get("home-1")
    assert job is not None and job.status == EXPORTING  # retries left: not failed yet, but shown at once
    assert job.chunkRetry is not None and job.chunkRetry.startswith(
        f"chunk 0.0 failed (receive 2 of 3) at {NOW}, tried again in 240 s: ObjectChangedError"
    )
    assert queue.delayed == [("r-2", 240)]  # not the queue's 90-minute visibility timeout
    with pytest.raises(ExportError, match="changed"):
        worker.handle_delivery(queue.sent[0], receive_count=3)
    job = jobs.get("home-1")
    assert job is not None and (job.status, job.chunksFailed) == (EXPORT_FAILED, {"0.0"})
    [completed] = events.of(EXPORT_COMPLETED)
    assert (
        completed["status"] == EXPORT_FAILED and "chunk 0.0: ObjectChangedError" in completed["failureReason"]
    )


def test_a_late_chunk_of_an_older_upload_does_not_overwrite_the_newer_uploads_records() -> None:
    # Given two uploads of one file (Monday's and Tuesday's), the older planned first, then the newer
    older = _job().model_copy(update={"jobName": "home-mon", "createdAt": "2026-11-23T00:00:00Z"})
    newer = _job().model_copy(update={"jobName": "home-tue", "createdAt": "2026-11-24T00:00:00Z"})
    older = older.model_copy(update={"outputPath": "s3://data/output/home/home-mon/"})
    newer = newer.model_copy(update={"outputPath": "s3://data/output/home/home-tue/"})
    jobs, objects, queue, events = FakeJobStore(older, newer), FakeObjects(), FakeQueue(), FakeEvents()
    for job in (older, newer):
        objects.put(BUCKET, f"output/home/{job.jobName}/u.jsonl.out", OUT)
    planner = ExportPlanner(ROUTES, jobs, objects, queue, events, clock=lambda: NOW)
    for job in (older, newer):
        planner.handle(JobStateChange(jobName=job.jobName, route="home", status=ACTIVE), datetime.now(UTC))
    destination = FakeDestination()
    worker = _worker(jobs, objects, events, destination)
    # When the newer job's chunks are written, and then the older job's (late, or re-driven)
    for message in [m for m in queue.sent if m.jobName == "home-tue"] + [
        m for m in queue.sent if m.jobName == "home-mon"
    ]:
        worker.handle(message)
    # Then only the newer upload's lines reached the destination; the older job ends EXPORTED, its
    # lines counted as superseded (not written, not failed)
    assert {chunk for chunk, _ in destination.chunks} == {
        m.chunkId for m in queue.sent if m.jobName == "home-tue"
    }
    assert len([key for _, lines in destination.chunks for _, key in lines]) == 40
    done = jobs.get("home-mon")
    assert done is not None and (done.status, done.exportLines, done.exportSuperseded) == (EXPORTED, 40, 40)
    [mon] = [detail for detail in events.of(EXPORT_COMPLETED) if detail["jobName"] == "home-mon"]
    assert (mon["linesSuperseded"], mon["linesWritten"], mon["linesFailed"]) == (40, 0, 0)


def test_uploads_of_different_files_of_a_route_do_not_supersede_each_other() -> None:
    older = _job().model_copy(update={"jobName": "home-eu", "sourceKey": "input/home/eu.jsonl"})
    newer = _job().model_copy(update={"jobName": "home-us", "sourceKey": "input/home/us.jsonl"})
    newer = newer.model_copy(update={"createdAt": "2026-11-24T00:00:00Z"})
    jobs, objects, queue, events = FakeJobStore(older, newer), FakeObjects(), FakeQueue(), FakeEvents()
    for job in (older, newer):
        job = jobs.jobs[job.jobName] = job.model_copy(
            update={"outputPath": f"s3://data/output/home/{job.jobName}/"}
        )
        objects.put(BUCKET, f"output/home/{job.jobName}/u.jsonl.out", OUT)
        ExportPlanner(ROUTES, jobs, objects, queue, events, clock=lambda: NOW).handle(
            JobStateChange(jobName=job.jobName, route="home", status=ACTIVE), datetime.now(UTC)
        )
    worker = _worker(jobs, objects, events, FakeDestination())
    for message in reversed(queue.sent):
        worker.handle(message)
    assert [jobs.get(name).exportWritten for name in ("home-eu", "home-us")] == [40, 40]  # type: ignore[union-attr]


def test_a_failed_chunk_is_tried_again_after_a_growing_delay_well_before_hours() -> None:
    delays = [retry_delay(receive) for receive in range(1, 5)]
    assert delays == [60, 240, 960, 3840]
    assert sum(delays) < 90 * 60  # given up after ~85 min, not 5 x 90 min
    assert retry_delay(10) == 5400


# ------------------------------------------------------------------ submitter

ROLE = "arn:aws:iam::123456789012:role/personalize"


def _submitter() -> tuple[Submitter, FakeJobStore, FakeObjects, FakePersonalize, FakeEvents]:
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    submitter = Submitter(ROUTES, jobs, objects, personalize, events, ROLE, clock=lambda: NOW)
    return submitter, jobs, objects, personalize, events


def _upload(objects: FakeObjects, key: str, body: bytes, identity: str = "seq-1") -> Upload:
    objects.put("data", key, body)
    return Upload(bucket="data", key=key, size=len(body), identity=identity)


def test_a_valid_upload_is_staged_and_submitted_with_the_routes_options() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    job = submitter.handle(_upload(objects, "input/home/u.jsonl", b'{"userId": "1"}\n{"userId": "2"}\n'))
    assert job is not None and job.status == CREATE_PENDING
    assert ROUTES.for_job("gone", job.routeSnapshot) == ROUTES.get("home")  # the job keeps its route
    [(kind, request)] = personalize.created
    assert (request["solutionVersionArn"], request["numResults"], request["roleArn"]) == (ARN, 5, ROLE)
    staged = request["jobInput"]["s3DataSource"]["path"].removeprefix("s3://data/")
    assert objects.read("data", staged) == b'{"userId":"1"}\n{"userId":"2"}\n'
    assert request["jobOutput"]["s3DataDestination"]["path"] == f"s3://data/output/home/{job.jobName}/"
    assert [detail["status"] for detail in events.of(JOB_STATE_CHANGE)] == [CREATE_PENDING]


def test_a_redelivered_upload_event_starts_nothing_more() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    upload = _upload(objects, "input/home/u.jsonl", b'{"userId": "1"}\n')
    first, again = submitter.handle(upload), submitter.handle(upload)
    assert first is not None and again is not None and first.jobName == again.jobName
    assert len(personalize.created) == 1 and len(events.of(JOB_STATE_CHANGE)) == 1


def test_an_invalid_upload_is_rejected_with_a_line_numbered_report_and_nothing_submitted() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    job = submitter.handle(_upload(objects, "input/home/bad.jsonl", b'{"userId": "1"}\n{"userId": 2}\n'))
    assert job is not None and job.status == REJECTED and personalize.created == []
    report = objects.json("data", f"rejected/home/{job.jobName}/bad.jsonl.report.json")
    assert [problem["line"] for problem in report["problems"]] == [2]
    assert objects.read("data", "input/home/bad.jsonl") == b'{"userId": "1"}\n{"userId": 2}\n'  # kept as is


def test_an_upload_at_personalizes_limit_is_queued_and_a_rejected_request_fails() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    personalize.create_errors = [PersonalizeLimitExceeded("5 running"), PersonalizeRejected("bad filter")]
    queued = submitter.handle(_upload(objects, "input/home/a.jsonl", b'{"userId": "1"}\n'))
    failed = submitter.handle(_upload(objects, "input/home/b.jsonl", b'{"userId": "1"}\n'))
    assert queued is not None and (queued.status, queued.inflight) == (QUEUED, "QUEUED")
    assert failed is not None and (failed.status, failed.failureReason) == (CREATE_FAILED, "bad filter")


@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_an_upload_replaced_or_deleted_before_it_is_read_is_rejected_not_read_as_the_newer_file(
    change: str,
) -> None:
    # Given an upload whose event names its ETag (an unversioned bucket), replaced or deleted before submit
    submitter, jobs, objects, personalize, events = _submitter()
    first = _upload(objects, "input/home/u.jsonl", b'{"userId": "first"}\n')
    first = Upload(first.bucket, first.key, first.size, first.identity, etag=objects.etag("data", first.key))
    if change == "replaced":
        objects.put("data", "input/home/u.jsonl", b'{"userId": "second"}\n')  # its own event follows
    else:
        del objects.data[("data", "input/home/u.jsonl")]
    # When the first upload's event is handled
    job = submitter.handle(first)
    # Then its job is rejected with the reason, and nothing of the newer file was staged or submitted
    assert job is not None and job.status == REJECTED and personalize.created == []
    report = objects.json("data", f"rejected/home/{job.jobName}/u.jsonl.report.json")
    assert report["fileProblem"]["found"].startswith("it was replaced or deleted before it could be read")
    assert not [key for (_, key) in objects.data if key.startswith("staged/")]


def test_an_upload_personalize_cannot_take_now_waits_queued_for_the_monitor() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    personalize.create_errors = [PersonalizeUnavailable("ThrottlingException: Rate exceeded")]
    job = submitter.handle(_upload(objects, "input/home/a.jsonl", b'{"userId": "1"}\n'))
    assert job is not None and (job.status, job.inflight) == (QUEUED, "QUEUED")
    assert jobs.get(job.jobName) == job  # recorded: the monitor submits it on its next tick
    monitor = Monitor(jobs, personalize, events, clock=lambda: NOW)
    assert monitor.tick().submitted == 1
    assert jobs.get(job.jobName).status == CREATE_PENDING  # type: ignore[union-attr]


def test_two_rejected_uploads_of_one_name_keep_a_report_each_and_long_names_fit_s3_keys() -> None:
    submitter, jobs, objects, personalize, events = _submitter()
    long_name = "u" * 1000 + ".jsonl"  # input/home/<name>: 1,017 bytes, within S3's 1,024
    first = submitter.handle(_upload(objects, "input/home/bad.jsonl", b"nope\n", identity="a"))
    second = submitter.handle(_upload(objects, "input/home/bad.jsonl", b"nope\n", identity="b"))
    long = submitter.handle(_upload(objects, f"input/home/{long_name}", b'{"userId": "1"}\n'))
    assert first and second and long and first.reportKey != second.reportKey
    assert {first.status, second.status, long.status} == {REJECTED, CREATE_PENDING}
    for key in [first.reportKey, second.reportKey, *(k for _, k in objects.data)]:
        assert key is not None and len(key.encode()) <= 1024, key
    staged = long.stagedPath or ""
    assert len(staged.removeprefix("s3://data/").encode()) + len(".out") <= 1024


# ------------------------------------------------------------------ monitor


def _stored(name: str, status: str, created: str, **fields: object) -> Job:
    job = Job(
        jobName=name,
        route="home",
        kind="user-personalization",
        status=RECEIVED,
        sourceBucket="data",
        sourceKey=f"input/home/{name}",
        sourceIdentity="x",
        createdAt=created,
        updatedAt=created,
        request=json.dumps({"jobName": name, "solutionVersionArn": ARN}),
        **fields,  # type: ignore[arg-type]
    )
    return job.moved_to(status, created)


def test_a_tick_records_each_status_change_once_and_submits_queued_jobs_oldest_first() -> None:
    running = _stored("run-1", CREATE_PENDING, "2026-11-23T09:00:00Z", jobArn="arn:run-1")
    old, new = _stored("q-1", QUEUED, "2026-11-23T09:01:00Z"), _stored("q-2", QUEUED, "2026-11-23T09:02:00Z")
    jobs, personalize, events = FakeJobStore(running, new, old), FakePersonalize(), FakeEvents()
    personalize.statuses["arn:run-1"] = ("ACTIVE", None)
    monitor = Monitor(jobs, personalize, events, clock=lambda: NOW)
    summary = monitor.tick()
    assert (summary.polled, summary.submitted, summary.changed) == (1, 2, 3)
    assert [request["jobName"] for _, request in personalize.created] == ["q-1", "q-2"]
    assert jobs.get("run-1").status == "ACTIVE"  # type: ignore[union-attr]
    # a second tick with nothing new changes nothing
    personalize.statuses.update(
        {
            "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/q-1": ("CREATE PENDING", None),
            "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/q-2": ("CREATE PENDING", None),
        }
    )
    assert monitor.tick().changed == 0
    assert len(events.of(JOB_STATE_CHANGE)) == 3


def test_queued_jobs_wait_while_personalize_is_at_its_limit() -> None:
    jobs = FakeJobStore(
        _stored("q-1", QUEUED, "2026-11-23T09:01:00Z"), _stored("q-2", QUEUED, "2026-11-23T09:02:00Z")
    )
    personalize, events = FakePersonalize(), FakeEvents()
    personalize.create_errors = [PersonalizeLimitExceeded("5 running")]
    summary = Monitor(jobs, personalize, events, clock=lambda: NOW).tick()
    assert (summary.submitted, summary.still_queued, summary.changed) == (0, 2, 0)
    assert events.published == []  # still QUEUED: no change to announce


@pytest.mark.parametrize(
    ("status", "waited_minutes", "reported"),
    [
        (RECEIVED, 59, False),
        (RECEIVED, 61, True),  # the submit function kept failing
        (ACTIVE, 61, True),  # the planner never ran
        (EXPORTING, 11 * 60, False),  # a long export is not stuck yet
        (EXPORTING, 12 * 60 + 1, True),
    ],
)
def test_a_job_left_waiting_on_our_own_functions_is_reported_stuck_once(
    status: str, waited_minutes: int, reported: bool
) -> None:
    since = "2026-11-23T00:00:00Z"
    job = _stored("w-1", status, since)
    assert job.inflight == "WAITING"
    jobs, events = FakeJobStore(job), FakeEvents()
    now = (datetime(2026, 11, 23, tzinfo=UTC) + timedelta(minutes=waited_minutes)).isoformat()
    monitor = Monitor(jobs, FakePersonalize(), events, clock=lambda: now)
    assert monitor.tick().stuck == int(reported)
    assert monitor.tick().stuck == 0  # once per status
    stuck = events.of(JOB_STUCK)
    assert len(stuck) == int(reported)
    if reported:
        assert (stuck[0]["status"], stuck[0]["since"], stuck[0]["waitedMinutes"]) == (
            status,
            since,
            waited_minutes,
        )
        assert "re-drive" in stuck[0]["whatToDo"]
        assert jobs.get("w-1").status == status  # type: ignore[union-attr]  # reported, not changed


def test_the_monitor_counts_jobs_over_their_routes_time_limit_and_times_the_jobs_that_end() -> None:
    # Issue #17, part 2: the JobsOverTimeLimit and PersonalizeJobSeconds metrics come from the tick
    arn = "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/"
    long = _job("home", "CREATE IN_PROGRESS", jobArn=arn + "long", inflight="RUNNING")
    long = long.model_copy(update={"jobName": "home-long", "createdAt": "2026-11-22T09:00:00Z"})  # 25 h
    ending = _job("limited", "CREATE IN_PROGRESS", jobArn=arn + "end", inflight="RUNNING")
    ending = ending.model_copy(update={"createdAt": "2026-11-23T09:30:00Z"})  # 30 min before NOW
    personalize = FakePersonalize()
    personalize.statuses = {arn + "long": ("CREATE IN_PROGRESS", None), arn + "end": ("ACTIVE", None)}
    summary = Monitor(
        FakeJobStore(long, ending), personalize, FakeEvents(), clock=lambda: NOW, routes=ROUTES
    ).tick()
    # the 25-hour job is over the home route's 24 hours; the one that became ACTIVE took 30 minutes
    assert (summary.over_time_limit, summary.job_seconds) == (1, [1800.0])
