"""The monitor's SES step: an IMPORTING job gets its import jobs started once, then is finished once
they all end, with their counts on the job and in the completion event."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from batchrecs.compose import destinations
from batchrecs.jobs.model import IMPORTING, Job
from batchrecs.monitor.service import Monitor, MonitorError
from batchrecs.routes.config import parse_routes
from batchrecs.sinks.ses.contacts import ContactImporter, ImportPlan, ScanProgress
from batchrecs.sinks.ses.destination import SesContacts
from batchrecs.sinks.ses.ports import ExistingContact

from tests.fakes import FakeEvents, FakeJobStore

ARN = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
ROUTES = parse_routes(
    f"""
routes:
  weekly:
    kind: user-personalization
    solutionVersionArn: {ARN}
    destination: {{type: ses, contactList: list, topic: weekly, address: {{type: userId}}}}
  home:
    kind: user-personalization
    solutionVersionArn: {ARN}
    destination: {{type: dynamodb}}
""",
    {},
)


class Importer:
    def __init__(self, files: list[str], results: list[dict[str, Any] | None]) -> None:
        self.files = files
        self.results = results
        self.prepared = 0
        self.started: list[str] = []

    list_topics = {"weekly"}

    def topic_problem(self, destination: Any) -> str | None:
        missing = destination.topics - self.list_topics
        return (
            f"contact list list has no topic {', '.join(missing)}: add it to the list (or change the route)"
            if missing
            else None
        )

    def scan(
        self, bucket: str, job_name: str, contact_list: str, progress: Any, time_left: Any
    ) -> ScanProgress:
        return ScanProgress(None, progress.pages + 1, done=True)  # a list of one page

    def merge(self, bucket: str, job_name: str, destination: Any) -> ImportPlan:
        assert (bucket, destination.topic) == ("data", "weekly")
        self.prepared += 1
        return ImportPlan(list(self.files), {"contacts": 12, "optedOut": 2, "importFiles": len(self.files)})

    def start(self, bucket: str, files: list[str], destination: Any) -> list[str]:
        self.started += [f"job-{key}" for key in files]
        return [f"job-{key}" for key in files]

    def poll(self, job_ids: list[str]) -> dict[str, Any] | None:
        assert job_ids == self.started
        return self.results.pop(0)


def _importing(route: str = "weekly") -> Job:
    now = "2026-11-23T10:00:00Z"
    return Job(
        jobName="w-1",
        route=route,
        kind="user-personalization",
        status=IMPORTING,
        inflight="IMPORTING",
        sourceBucket="data",
        sourceKey="input/weekly/u.jsonl",
        sourceIdentity="x",
        createdAt=now,
        updatedAt=now,
        outputPath="s3://data/output/weekly/w-1/",
        exportLines=14,
        exportWritten=14,
        exportFailed=0,
        exportRecords=12,
        exportMissing=2,
        chunksTotal=1,
        chunksDone={"0.0"},
    )


def _the(jobs: FakeJobStore) -> Job:
    [job] = jobs.jobs.values()
    return job


def _monitor(jobs: FakeJobStore, events: FakeEvents, importer: Importer) -> Monitor:
    ses = SesContacts(objects=None, importer=importer, address_books=None)  # type: ignore[arg-type]
    destination_for = destinations(ses=lambda: ses)  # as build_monitor: SES is the one with a step
    return Monitor(jobs, personalize=None, events=events, routes=ROUTES, destination_for=destination_for)  # type: ignore[arg-type]


def test_imports_start_once_and_the_export_finishes_once_they_end() -> None:
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    done = {"contactsImported": 11, "contactsFailed": 1, "importJobsFailed": 0, "failure": None}
    importer = Importer(["a.jsonl", "b.jsonl"], [None, dict(done)])
    monitor = _monitor(jobs, events, importer)
    # When the monitor ticks: the imports start; then they are still running; then they ended
    summaries = [monitor.tick() for _ in range(3)]
    # Then the import files were prepared and started once
    assert importer.prepared == 1 and importer.started == ["job-a.jsonl", "job-b.jsonl"]
    assert [summary.importing for summary in summaries] == [1, 1, 1]
    # And the job is EXPORTED with the counts, and the completion event was published once
    job = _the(jobs)
    assert (job.status, job.inflight, job.importJobs) == ("EXPORTED", None, ["job-a.jsonl", "job-b.jsonl"])
    assert job.export is not None
    assert job.export["contacts"] == {
        "contacts": 12,
        "optedOut": 2,
        "importFiles": 2,
        "contactsImported": 11,
        "contactsFailed": 1,
        "importJobsFailed": 0,
    }
    assert job.export["usersWithoutAddress"] == 2
    [(detail_type, detail)] = events.published
    assert detail_type == "Batch Export Completed"
    assert (detail["status"], detail["usersWithoutAddress"], detail["contacts"]["contactsImported"]) == (
        "EXPORTED",
        2,
        11,
    )
    # And a later tick finds nothing left to do
    assert monitor.tick().importing == 0


def test_a_failed_import_job_fails_the_export_with_its_reason() -> None:
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    failed = {
        "contactsImported": 0,
        "contactsFailed": 0,
        "importJobsFailed": 1,
        "failure": "job-a.jsonl: bad file",
    }
    monitor = _monitor(jobs, events, Importer(["a.jsonl"], [failed]))
    monitor.tick()
    monitor.tick()
    assert (_the(jobs).status, _the(jobs).failureReason) == ("EXPORT_FAILED", "job-a.jsonl: bad file")
    assert events.published[0][1]["status"] == "EXPORT_FAILED"


def test_an_export_without_contacts_finishes_without_import_jobs() -> None:
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    empty = {"contactsImported": 0, "contactsFailed": 0, "importJobsFailed": 0, "failure": None}
    importer = Importer([], [empty])
    _monitor(jobs, events, importer).tick()
    assert (_the(jobs).status, importer.started) == ("EXPORTED", [])
    assert len(events.published) == 1


def test_an_importing_job_of_a_route_that_is_no_longer_ses_is_reported() -> None:
    jobs, events = FakeJobStore(_importing(route="home")), FakeEvents()
    with pytest.raises(MonitorError, match="route home exports to dynamodb, which has no step here"):
        _monitor(jobs, events, Importer([], [])).tick()
    assert _the(jobs).status == IMPORTING and not events.published


def test_an_export_written_again_starts_its_contact_imports_anew() -> None:
    # Given an SES export whose imports ran before (a re-driven or re-exported job)
    earlier = _importing().moved_to(
        "EXPORT_FAILED", "2026-11-23T01:00:00Z", importJobs=["old-a"], contactImport={"contacts": 3}
    )
    ses = SesContacts(objects=None, importer=None, address_books=None)  # type: ignore[arg-type]
    # When its last chunk is written again
    moved = ses.after_last_chunk(earlier, "2026-11-23T02:00:00Z")
    # Then it is IMPORTING with no import jobs: the next tick prepares and starts them again
    assert (moved.status, moved.inflight, moved.importJobs, moved.contactImport) == (
        IMPORTING,
        "IMPORTING",
        None,
        None,
    )
    assert moved.updatedAt == "2026-11-23T02:00:00Z"


class BrokenStagedFile(Importer):
    def merge(self, bucket: str, job_name: str, destination: Any) -> ImportPlan:
        raise TimeoutError("read timed out")  # not an AWS error: before, it ended the whole tick


def test_a_failing_import_step_does_not_keep_queued_jobs_from_being_submitted() -> None:
    from batchrecs.jobs.model import QUEUED

    from tests.fakes import FakePersonalize

    queued = _importing(route="home").model_copy(
        update={"jobName": "q-1", "request": f'{{"jobName": "q-1", "solutionVersionArn": "{ARN}"}}'}
    )
    queued = queued.moved_to(QUEUED, "2026-11-23T00:00:00Z")
    jobs, events, personalize = FakeJobStore(_importing(), queued), FakeEvents(), FakePersonalize()
    ses = SesContacts(objects=None, importer=BrokenStagedFile([], []), address_books=None)  # type: ignore[arg-type]
    monitor = Monitor(jobs, personalize, events, routes=ROUTES, destination_for=destinations(ses=lambda: ses))
    # When a tick meets an import step that fails with a non-AWS error
    with pytest.raises(MonitorError, match="w-1: TimeoutError: read timed out"):
        monitor.tick()
    # Then the queued job was submitted all the same, and the importing job waits for the next tick
    assert [request["jobName"] for _, request in personalize.created] == ["q-1"]
    assert jobs.get("q-1").status == "CREATE PENDING"  # type: ignore[union-attr]
    assert jobs.get("w-1").status == IMPORTING  # type: ignore[union-attr]


def test_a_route_topic_missing_from_the_contact_list_fails_the_export_once_before_importing() -> None:
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    importer = Importer(["a.jsonl"], [])
    importer.list_topics = {"monthly"}
    monitor = _monitor(jobs, events, importer)
    monitor.tick()
    assert (_the(jobs).status, importer.prepared, importer.started) == ("EXPORT_FAILED", 0, [])
    assert (
        _the(jobs).failureReason
        == "contact list list has no topic weekly: add it to the list (or change the route)"
    )
    assert monitor.tick().importing == 0 and len(events.published) == 1


def test_an_older_upload_whose_newer_upload_exports_is_not_imported_over_it() -> None:
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    importer = Importer(["a.jsonl"], [])
    ses = SesContacts(objects=None, importer=importer, address_books=None, newer_upload=lambda job: "w-2")  # type: ignore[arg-type]
    Monitor(
        jobs, personalize=None, events=events, routes=ROUTES, destination_for=destinations(ses=lambda: ses)
    ).tick()  # type: ignore[arg-type]
    job = _the(jobs)
    assert (job.status, job.exportSuperseded, importer.prepared, importer.started) == ("EXPORTED", 14, 0, [])
    [(_, detail)] = events.published
    assert detail["linesSuperseded"] == 14


class PagedList:
    """A contact list read a page at a time; each page read takes the clock 100 s forward."""

    def __init__(self, pages: list[list[ExistingContact]], clock: list[float]) -> None:
        self.pages, self.clock, self.reads = pages, clock, 0
        self.imported: list[str] = []

    def contacts_page(self, contact_list: str, token: str | None) -> tuple[list[ExistingContact], str | None]:
        index = int(token or 0)
        self.clock[0] += 100
        self.reads += 1
        return self.pages[index], (str(index + 1) if index + 1 < len(self.pages) else None)

    def topics(self, contact_list: str) -> dict[str, str]:
        return {"weekly": "OPT_OUT"}

    def start_import(self, contact_list: str, s3_url: str) -> str:
        self.imported.append(s3_url)
        return f"import-{len(self.imported)}"


def test_a_long_contact_list_is_read_over_several_bounded_ticks_from_where_each_stopped() -> None:
    from tests.fakes import FakeObjects

    # Given an export of 3 users to a list of 5 pages, the last of which has one of them opted out
    pages = [[ExistingContact(f"other{p}@example.com", False, {})] for p in range(4)]
    pages.append([ExistingContact("b@example.com", False, {"weekly": "OPT_OUT"})])
    clock = [0.0]
    lists = PagedList(pages, clock)
    objects = FakeObjects()
    staged = b"".join(
        b'{"emailAddress":"%s@example.com","topics":["weekly"],"attributes":{"jobName":"w-1"}}\n' % user
        for user in (b"a", b"b", b"c")
    )
    objects.put("data", "exports/w-1/contacts/0.0.jsonl", staged)
    ses = SesContacts(
        objects,
        ContactImporter(objects, lists),  # type: ignore[arg-type]
        address_books=None,  # type: ignore[arg-type]
        clock=lambda: "2026-12-01T10:00:00Z",
        step_seconds=250,  # each tick reads until 250 s have gone: three pages
        monotonic=lambda: clock[0],
    )
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    monitor = Monitor(jobs, None, events, routes=ROUTES, destination_for=destinations(ses=lambda: ses))  # type: ignore[arg-type]
    # When the first tick runs out of its time
    monitor.tick()
    # Then it kept how far it read (3 pages) and its snapshot, and started no import
    assert _the(jobs).contactScan == {"token": "3", "pages": 3, "done": False}
    assert _the(jobs).preferencesReadAt == "2026-12-01T10:00:00Z" and lists.imported == []
    # When the next tick reads the rest
    monitor.tick()
    # Then it went on from page 4, not from the start, and imported the merge of every page
    assert lists.reads == 5
    assert objects.list_keys("data", "exports/w-1/list-snapshot/") == [
        "exports/w-1/list-snapshot/0000000.jsonl",
        "exports/w-1/list-snapshot/0000003.jsonl",
    ]
    job = _the(jobs)
    assert job.contactImport is not None and (
        job.contactImport["contacts"],
        job.contactImport["optedOut"],
    ) == (2, 1)
    assert lists.imported == ["s3://data/ses-imports/w-1/contacts-0001.jsonl"]
    records = objects.read("data", "ses-imports/w-1/contacts-0001.jsonl").splitlines()
    assert sorted(orjson.loads(r)["emailAddress"] for r in records) == ["a@example.com", "c@example.com"]
