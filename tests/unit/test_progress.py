"""A waiting command's progress: a bar redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
from decimal import Decimal

from batchrecs.jobs.model import Job
from batchrecs_local.progress import JobProgress, Shown


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _job(status: str, done: int = 0, total: int | None = None, records: int | None = None) -> dict:
    item: dict = {"jobName": "home-users-1", "status": status}
    if total is not None:
        item |= {"chunksTotal": Decimal(total), "chunksDone": {str(n) for n in range(done)}}
    if records is not None:
        item["exportRecords"] = Decimal(records)
    return item


def test_on_a_terminal_the_bar_is_redrawn_in_place_at_every_poll() -> None:
    stream, clock = io.StringIO(), Clock()
    with JobProgress(stream, clock, terminal=True) as progress:  # as the commands use it: ended on leaving
        progress.show(_job("CREATE IN_PROGRESS"))
        clock.now += 65
        progress.show(_job("EXPORTING", done=2, total=4, records=1234))
        progress.show(_job("EXPORTING", done=2, total=4, records=1234))

    draws = stream.getvalue().split("\r")[1:]
    assert len(draws) == 3  # every poll draws, so the clock moves even when the job does not
    assert draws[0].startswith("home-users-1  CREATE IN_PROGRESS ")
    assert "[--------------------] -/- chunks  0 records  0:00" in draws[0]
    assert "[##########----------] 2/4 chunks  1,234 records  1:05" in draws[1]
    assert all(draw.rstrip("\n").endswith("\x1b[K") for draw in draws)  # what a longer line left is cleared
    assert stream.getvalue().endswith("\n")  # the last state stays on its own line


def test_elsewhere_a_plain_line_each_time_something_changed_and_no_control_characters() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = JobProgress(stream, clock, terminal=False)

    progress.show(_job("CREATE IN_PROGRESS"))
    progress.show(_job("CREATE IN_PROGRESS"))
    clock.now += 3
    progress.show(_job("EXPORTING", done=1, total=4, records=10))
    progress.show(_job("EXPORTING", done=4, total=4, records=40))
    progress.show(_job("EXPORTED", done=4, total=4, records=40))
    progress.end()

    assert stream.getvalue().splitlines() == [
        "  home-users-1: CREATE IN_PROGRESS (0:00)",
        "  home-users-1: EXPORTING chunks 1/4, 10 records (0:03)",
        "  home-users-1: EXPORTING chunks 4/4, 40 records (0:03)",
        "  home-users-1: EXPORTED chunks 4/4, 40 records (0:03)",
    ]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_a_job_model_and_a_table_item_show_alike() -> None:
    model = Job(
        jobName="home-users-1",
        route="home",
        kind="user-personalization",
        status="EXPORTING",
        sourceBucket="b",
        sourceKey="input/home/users.jsonl",
        sourceIdentity="v1",
        createdAt="2026-12-05T00:00:00Z",
        updatedAt="2026-12-05T00:00:00Z",
        chunksTotal=3,
        chunksDone={"0", "2"},
        exportRecords=7,
    )

    assert Shown.of(model) == Shown.of(_job("EXPORTING", done=2, total=3, records=7))
    assert Shown.of(model) == Shown("home-users-1", "EXPORTING", 2, 3, 7)
