"""Uploads past one job's limits (issue #16, part 2): staged as parts that each fit, a job per part, and
one outcome for the upload once every part has ended; on recording fakes of the ports."""

from __future__ import annotations

import json
import random
import re

import pytest
from batchrecs.formats.events import EXPORT_COMPLETED, EXPORT_PART_COMPLETED, JOB_STATE_CHANGE
from batchrecs.jobs import parts
from batchrecs.jobs.model import (
    CREATE_FAILED,
    CREATE_PENDING,
    EXPORT_FAILED,
    EXPORTED,
    EXPORTING,
    IN_PARTS,
    REJECTED,
    Job,
)
from batchrecs.jobs.naming import MAX_JOB_NAME, job_name, part_job_name
from batchrecs.monitor.service import Monitor
from batchrecs.routes.config import parse_routes
from batchrecs.submit.parts import StagedParts
from batchrecs.submit.service import Submitter, Upload

from tests.fakes import FakeEvents, FakeJobStore, FakeObjects, FakePersonalize, FakeWriter

VERSION = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
SOLUTION = "arn:aws:personalize:us-east-1:123456789012:solution/fresh"
ROUTES = parse_routes(
    f"""
routes:
  big:
    kind: user-personalization
    solutionVersionArn: {VERSION}
    maxLinesPerJob: 4
    destination: {{type: dynamodb}}
  newest:
    kind: user-personalization
    solutionArn: {SOLUTION}
    maxLinesPerJob: 4
    destination: {{type: dynamodb}}
  replacing:
    kind: user-personalization
    solutionVersionArn: {VERSION}
    maxLinesPerJob: 4
    destination: {{type: dynamodb, replacePrevious: true}}
""",
    {},
)
NOW = "2026-12-05T10:00:00Z"
BUCKET = "data"
ROLE = "arn:aws:iam::123456789012:role/personalize"


def _lines(users: list[int]) -> bytes:
    return b"".join(b'{"userId": "%d"}\n' % user for user in users)


def _compact(users: list[int]) -> bytes:
    """The lines as they are staged (compact JSON)."""
    return b"".join(b'{"userId":"%d"}\n' % user for user in users)


class _Writers:
    """StagedParts' writers, kept by name."""

    def __init__(self) -> None:
        self.objects = FakeObjects()
        self.opened: list[str] = []

    def single(self) -> FakeWriter:
        self.opened.append("single")
        return self.objects.writer(BUCKET, "single", "")

    def part(self, number: int) -> FakeWriter:
        self.opened.append(f"part-{number}")
        return self.objects.writer(BUCKET, f"part-{number}", "")

    def body(self, name: str) -> bytes:
        return self.objects.read(BUCKET, name)


def _stage(
    data: bytes, max_lines: int, max_bytes: int, chunk_sizes: list[int]
) -> tuple[StagedParts, _Writers]:
    writers = _Writers()
    staged = StagedParts(writers.single, writers.part, max_lines=max_lines, max_bytes=max_bytes)
    writer = staged.open(len(data), data.count(b"\n"))
    offset = 0
    for size in chunk_sizes:
        writer.write(data[offset : offset + size])
        offset += size
    writer.write(data[offset:])
    staged.close()
    return staged, writers


@pytest.mark.parametrize("seed", range(6))
def test_parts_hold_every_line_once_in_order_each_within_both_limits_wherever_the_chunks_end(
    seed: int,
) -> None:
    # Given lines of different lengths, written in chunks that end anywhere (mid-line too)
    rng = random.Random(seed)
    data = b"".join(b'{"userId": "%s"}\n' % (b"u" * rng.randint(1, 30)) for _ in range(200))
    cuts = [rng.randint(1, 300) for _ in range(40)]
    max_lines, max_bytes = rng.randint(5, 40), rng.randint(200, 900)
    staged, writers = _stage(data, max_lines, max_bytes, cuts)
    # Then the parts, read in order, are the lines exactly, each part whole lines within both limits
    bodies = [writers.body(f"part-{number}") for number in range(1, len(staged.parts) + 1)]
    assert b"".join(bodies) == data
    assert writers.opened == [f"part-{number}" for number in range(1, len(bodies) + 1)]
    for body, part in zip(bodies, staged.parts, strict=True):
        assert body.endswith(b"\n") and body.count(b"\n") == part.lines <= max_lines
        assert len(body) == part.bytes <= max_bytes
    # and a part ends only where the next line would not fit (no part could have taken more)
    for body, following in zip(bodies, bodies[1:], strict=False):
        first = following[: following.index(b"\n") + 1]
        assert body.count(b"\n") == max_lines or len(body) + len(first) > max_bytes
    # and the same lines make the same parts however they were chunked
    again, rewriters = _stage(data, max_lines, max_bytes, [len(data) // 3])
    assert again.parts == staged.parts
    assert [rewriters.body(f"part-{n}") for n in range(1, len(again.parts) + 1)] == bodies


def test_lines_that_fit_one_job_are_staged_as_one_file_and_an_upload_that_cannot_be_split_writes_nothing() -> (
    None
):
    data = _lines(list(range(1, 5)))
    staged, writers = _stage(data, max_lines=4, max_bytes=1 << 30, chunk_sizes=[])
    assert (writers.opened, staged.parts, writers.body("single")) == (["single"], [], data)
    # Given a route that cannot run an upload as several jobs
    writers = _Writers()
    refusing = StagedParts(writers.single, writers.part, max_lines=2, refuse_parts="it says no")
    refusing.open(len(data), 4).write(data)
    refusing.close()
    # Then nothing is staged, and why is kept for the report
    assert (writers.opened, refusing.refused) == ([], "it says no")


def test_part_job_names_follow_from_the_upload_job_and_fit_personalizes_pattern() -> None:
    upload = job_name("a-very-long-route-name", "input/a-very-long-route-name/" + "x" * 80 + ".jsonl", "v1")
    names = [part_job_name(upload, number) for number in (1, 2, 10, 100)]
    assert len(set(names)) == 4
    for number, name in zip((1, 2, 10, 100), names, strict=True):
        assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*", name) and len(name) <= MAX_JOB_NAME
        assert name.endswith(f"-p{number}-{upload.rsplit('-', 1)[1]}")  # the upload's digest
    assert part_job_name(upload, 2) == names[1]  # every delivery names the same part


def _submitter(
    jobs: FakeJobStore, objects: FakeObjects, personalize: FakePersonalize, events: FakeEvents
) -> Submitter:
    return Submitter(ROUTES, jobs, objects, personalize, events, ROLE, clock=lambda: NOW)


def _upload(objects: FakeObjects, route: str, body: bytes, identity: str = "v1") -> Upload:
    key = f"input/{route}/users.jsonl"
    objects.put(BUCKET, key, body)
    return Upload(BUCKET, key, len(body), identity, etag=objects.etag(BUCKET, key))


def test_an_upload_past_the_lines_per_job_runs_as_a_job_per_part_once_however_often_it_is_delivered() -> None:
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    submitter = _submitter(jobs, objects, personalize, events)
    # Given 12 lines of 10 users (users 3 and 7 twice, the repeat in a later part) on a route of 4 lines
    # per job
    upload = _upload(objects, "big", _lines([1, 2, 3, 4, 5, 6, 3, 7, 8, 9, 7, 10]))
    # When it is submitted
    job = submitter.handle(upload)
    # Then the upload's job is IN PARTS with its validation counts, and names 3 parts
    assert job is not None and job.status == IN_PARTS and job.inflight == "PARTS"
    assert job.validation is not None and (job.validation["valid"], job.validation["duplicates"]) == (10, 2)
    assert job.parts == [part_job_name(job.jobName, n) for n in (1, 2, 3)]
    # And each part is a job of its own, submitted, reading its part of the unique lines in order
    staged = []
    for name in job.parts:
        part = jobs.get(name)
        assert part is not None and part.status == CREATE_PENDING and part.partOf == job.jobName
        assert (part.sourceKey, part.createdAt, part.route) == (upload.key, job.createdAt, "big")
        request = json.loads(part.request or "{}")
        assert request["jobInput"]["s3DataSource"]["path"] == part.stagedPath
        assert request["jobOutput"]["s3DataDestination"]["path"] == f"s3://{BUCKET}/output/big/{name}/"
        staged.append(objects.read(BUCKET, (part.stagedPath or "").split("/", 3)[3]))
    assert staged == [_compact([1, 2, 3, 4]), _compact([5, 6, 7, 8]), _compact([9, 10])]
    assert [r["jobName"] for _, r in personalize.created] == job.parts
    assert [e["status"] for e in events.of(JOB_STATE_CHANGE)] == [CREATE_PENDING] * 3 + [IN_PARTS]
    assert events.of(JOB_STATE_CHANGE)[-1]["parts"] == job.parts
    assert {e["partOf"] for e in events.of(JOB_STATE_CHANGE)[:3]} == {job.jobName}
    # When the event is delivered again, nothing more is started
    assert submitter.handle(upload) == jobs.get(job.jobName)
    assert len(personalize.created) == 3


def test_a_submit_retried_after_it_started_some_parts_starts_only_the_others() -> None:
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    upload = _upload(objects, "big", _lines(list(range(1, 10))))
    # Given a first try that started part 1, then died before the others and the upload's own record
    personalize.create_errors = []
    first = _submitter(jobs, objects, personalize, events)
    original_claim = jobs.claim
    claimed: list[str] = []

    def claim_then_die(job: Job) -> Job:
        claimed.append(job.jobName)
        if len(claimed) == 3:  # the upload's job, part 1, then part 2: the function dies
            raise TimeoutError("the function timed out")
        return original_claim(job)

    jobs.claim = claim_then_die  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        first.handle(upload)
    jobs.claim = original_claim  # type: ignore[method-assign]
    assert len(personalize.created) == 1
    # When Lambda retries the event
    job = _submitter(jobs, objects, personalize, events).handle(upload)
    # Then parts 2 and 3 start, part 1 is not created again, and the upload's job is IN PARTS
    assert job is not None and job.status == IN_PARTS
    assert [r["jobName"] for _, r in personalize.created] == job.parts


def test_the_parts_of_a_solution_route_all_run_the_version_that_was_newest_when_the_upload_was_read() -> None:
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    personalize.versions[SOLUTION] = [(f"{SOLUTION}/1", "ACTIVE"), (f"{SOLUTION}/2", "ACTIVE")]
    job = _submitter(jobs, objects, personalize, events).handle(
        _upload(objects, "newest", _lines(list(range(9))))
    )
    assert job is not None and job.status == IN_PARTS
    assert {request["solutionVersionArn"] for _, request in personalize.created} == {f"{SOLUTION}/2"}
    assert all("solutionArn" not in request for _, request in personalize.created)


def test_a_replacing_route_rejects_an_upload_past_one_jobs_limits_and_stages_nothing() -> None:
    jobs, objects, personalize, events = FakeJobStore(), FakeObjects(), FakePersonalize(), FakeEvents()
    job = _submitter(jobs, objects, personalize, events).handle(
        _upload(objects, "replacing", _lines(list(range(9))))
    )
    assert job is not None and job.status == REJECTED
    assert "replacePrevious compares one job's input" in (job.failureReason or "")
    report = objects.json(BUCKET, job.reportKey or "")
    assert report["fileProblem"]["found"] == "9 unique lines, 135 bytes"  # 15 bytes each, as staged
    assert not objects.list_keys(BUCKET, "staged/") and not personalize.created


def _ended(upload: Job, number: int, status: str, **fields: object) -> Job:
    return upload.model_copy(
        update={
            "jobName": part_job_name(upload.jobName, number),
            "partOf": upload.jobName,
            "status": status,
            "inflight": None,
            "parts": None,
            **fields,
        }
    )


def _upload_job(count: int) -> Job:
    upload = Job(
        jobName="big-users-0123456789ab",
        route="big",
        kind="user-personalization",
        status=IN_PARTS,
        inflight="PARTS",
        sourceBucket=BUCKET,
        sourceKey="input/big/users.jsonl",
        sourceIdentity="v1",
        createdAt=NOW,
        updatedAt=NOW,
    )
    return upload.model_copy(
        update={"parts": [part_job_name(upload.jobName, n) for n in range(1, count + 1)]}
    )


def _exported(upload: Job, number: int, lines: int) -> Job:
    return _ended(
        upload,
        number,
        EXPORTED,
        exportLines=lines,
        exportWritten=lines,
        exportRecords=lines,
        exportFailed=0,
        exportThrottles=number,
        chunksTotal=2,
        solutionVersionArn=VERSION,
    )


def test_the_upload_ends_once_when_every_part_has_with_its_parts_counts_summed() -> None:
    upload = _upload_job(3)
    parts_now = [_exported(upload, 1, 4), _exported(upload, 2, 4), _ended(upload, 3, EXPORTING)]
    jobs, events = FakeJobStore(upload, *parts_now), FakeEvents()
    monitor = Monitor(jobs, FakePersonalize(), events, clock=lambda: NOW)
    # While part 3 still exports, the upload waits
    assert monitor.tick().in_parts == 1
    assert jobs.get(upload.jobName).status == IN_PARTS and not events.published  # type: ignore[union-attr]
    # When part 3 has exported too
    jobs.jobs[parts_now[2].jobName] = _exported(upload, 3, 2)
    monitor.tick()
    # Then the upload is EXPORTED with the sums, in one Batch Export Completed naming each part
    done = jobs.get(upload.jobName)
    assert done is not None and done.status == EXPORTED and done.inflight is None
    [event] = events.of(EXPORT_COMPLETED)
    assert (event["jobName"], event["status"], event["partOf"]) == (upload.jobName, EXPORTED, None)
    assert (event["lines"], event["linesWritten"], event["recordsWritten"], event["throttles"]) == (
        10,
        10,
        10,
        6,
    )
    assert event["solutionVersionArn"] == VERSION
    assert [(p["jobName"], p["status"], p["lines"]) for p in event["parts"]] == [
        (name, EXPORTED, lines) for name, lines in zip(upload.parts or [], (4, 4, 2), strict=True)
    ]
    assert done.export is not None and (done.export["lines"], done.export["chunks"]) == (10, 6)
    # And a later tick publishes nothing more
    monitor.tick()
    assert len(events.of(EXPORT_COMPLETED)) == 1


def test_an_upload_whose_part_failed_ends_export_failed_naming_the_part_and_why() -> None:
    upload = _upload_job(3)
    failed = _ended(upload, 2, CREATE_FAILED, failureReason="Input is not valid")
    jobs = FakeJobStore(
        upload, _exported(upload, 1, 4), failed, _ended(upload, 3, REJECTED, failureReason="gone")
    )
    events = FakeEvents()
    Monitor(jobs, FakePersonalize(), events, clock=lambda: NOW).tick()
    done = jobs.get(upload.jobName)
    assert done is not None and done.status == EXPORT_FAILED
    assert done.failureReason == (
        f"part 2 of 3 ({failed.jobName}) CREATE FAILED: Input is not valid; "
        f"part 3 of 3 ({part_job_name(upload.jobName, 3)}) REJECTED: gone"
    )
    [event] = events.of(EXPORT_COMPLETED)
    assert (event["status"], event["lines"], event["failureReason"]) == (EXPORT_FAILED, 4, done.failureReason)


def test_a_parts_own_completion_is_a_part_event_and_its_siblings_are_not_newer_uploads() -> None:
    from batchrecs.export.progress import finish

    upload = _upload_job(2)
    first, second = (_ended(upload, n, EXPORTING, chunksTotal=1) for n in (1, 2))
    jobs, events = FakeJobStore(upload, first, second), FakeEvents()
    # A part exporting beside its sibling is not superseded by it (the same upload)
    assert jobs.newer_upload_exporting(first) is None
    assert parts.same_upload(first, second) and parts.same_upload(second, upload)
    # and a newer upload of the same key is still newer than the part
    newer = first.model_copy(
        update={"jobName": "big-users-ffffffffffff", "partOf": None, "createdAt": "2026-12-06"}
    )
    jobs.jobs[newer.jobName] = newer
    assert jobs.newer_upload_exporting(first) == newer.jobName
    # and a part's end is published as a part's
    finish(first, EXPORTED, jobs, events, lambda: NOW)
    assert [kind for kind, _ in events.published] == [EXPORT_PART_COMPLETED]
    assert events.published[0][1]["partOf"] == upload.jobName


def test_an_export_replacing_an_upload_run_in_parts_removes_the_ids_of_every_part() -> None:
    from batchrecs.export.replace import write_removals

    objects = FakeObjects()
    route = ROUTES.routes["replacing"]
    objects.put(BUCKET, "staged/replacing/new/u.jsonl", _compact([2, 5]))
    for number, users in ((1, [1, 2]), (2, [3, 4, 5])):  # the previous upload's two parts
        objects.put(BUCKET, f"staged/replacing/old-p{number}/u.jsonl", _compact(users))
    job = _upload_job(0).model_copy(
        update={"jobName": "new", "stagedPath": f"s3://{BUCKET}/staged/replacing/new/u.jsonl"}
    )
    previous = [f"s3://{BUCKET}/staged/replacing/old-p{number}/u.jsonl" for number in (1, 2)]
    info = write_removals(objects, job, "old", previous, route, BUCKET)
    assert objects.read(BUCKET, info.key).split() == [b'"1"', b'"3"', b'"4"']
