"""``batchrecs replay-export`` on fakes (issue #17, part 1): a finished job goes back to ACTIVE with its
export's progress and counts cleared (saved before its event is published), an upload run in parts
replays each part, and a job still running is not replayed."""

from __future__ import annotations

import pytest
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs.model import ACTIVE, EXPORTED, EXPORTING, IN_PARTS, REJECTED, Job
from batchrecs.operate.replay import NotReplayable, replay_export
from pydantic import BaseModel

from tests.fakes import FakeEvents, FakeJobStore

NOW = "2026-12-05T12:00:00Z"


def _job(name: str, status: str = EXPORTED, **fields: object) -> Job:
    return Job(
        jobName=name,
        route="home",
        kind="user-personalization",
        status=status,
        sourceBucket="b",
        sourceKey="input/home/u.jsonl",
        sourceIdentity="v1",
        createdAt="2026-12-01T00:00:00Z",
        updatedAt="2026-12-01T01:00:00Z",
        outputPath="s3://b/output/home/x/",
        generatedAt="2026-12-01T00:30:00Z",
        **fields,
    )


class _SeeingTheStore(FakeEvents):
    """Events that note the stored status of the job each one names when it is published."""

    def __init__(self, jobs: FakeJobStore) -> None:
        super().__init__()
        self._jobs = jobs
        self.stored: list[str] = []

    def publish(self, detail_type: str, detail: BaseModel) -> None:
        self.stored.append(self._jobs.jobs[detail.jobName].status)
        super().publish(detail_type, detail)


def test_a_finished_job_is_active_again_with_nothing_counted_and_its_event_published_after_the_save() -> None:
    done = _job(
        "home-1",
        chunksTotal=2,
        chunksDone={"0.0", "0.1"},
        exportLines=10,
        exportWritten=10,
        exportRecords=10,
        export={"lines": 10},
    )
    jobs = FakeJobStore(done)
    events = _SeeingTheStore(jobs)
    replayed = replay_export(done, jobs, events, lambda: NOW)
    stored = jobs.get("home-1")
    assert stored == replayed and stored is not None and stored.status == ACTIVE
    assert (stored.chunksTotal, stored.chunksDone, stored.exportLines, stored.export) == (
        None,
        None,
        None,
        None,
    )
    assert stored.generatedAt == done.generatedAt  # the same records: their generatedAt too
    assert [e["status"] for e in events.of(JOB_STATE_CHANGE)] == [ACTIVE] and events.stored == [ACTIVE]
    assert (stored.history or [])[-1] == {"status": ACTIVE, "at": NOW}


def test_an_upload_in_parts_replays_its_finished_parts_and_waits_for_them_again() -> None:
    upload = _job("big", parts=["big-p1", "big-p2"], export={"lines": 5})
    first, failed = _job("big-p1", partOf="big", exportLines=5), _job("big-p2", REJECTED, partOf="big")
    jobs, events = FakeJobStore(upload, first, failed), FakeEvents()
    waiting = replay_export(upload, jobs, events, lambda: NOW)
    assert (waiting.status, waiting.inflight, waiting.export) == (IN_PARTS, "PARTS", None)
    assert jobs.get("big-p1").status == ACTIVE  # type: ignore[union-attr]
    assert jobs.get("big-p2").status == REJECTED  # type: ignore[union-attr]  # nothing to export again
    assert [e["jobName"] for e in events.of(JOB_STATE_CHANGE)] == ["big-p1"]


def test_a_job_still_exporting_is_not_replayed() -> None:
    running = _job("home-2", EXPORTING)
    jobs, events = FakeJobStore(running), FakeEvents()
    with pytest.raises(NotReplayable, match="home-2 is EXPORTING"):
        replay_export(running, jobs, events, lambda: NOW)
    assert jobs.get("home-2") == running and not events.published
