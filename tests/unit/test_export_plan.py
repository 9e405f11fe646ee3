"""The export plan: every chunk once, and with a worker limit, the route's chunks in N queue groups."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from batchrecs.export.plan import ExportPlan, message_group
from batchrecs.formats.events import ChunkMessage


@dataclass(frozen=True)
class File:
    key: str
    etag: str
    size: int


FILES = [
    File(key="output/home/j/a.jsonl.out", etag="e1", size=10),
    File(key="output/home/j/b.jsonl.out", etag="e2", size=25),
    File(key="output/home/j/empty.jsonl.out", etag="e3", size=0),
]


def _plan(job: str = "j") -> ExportPlan:
    return ExportPlan(
        job_name=job,
        route="home",
        bucket="data",
        generated_at="2026-11-23T06:00:00Z",
        chunk_bytes=4,
        files=FILES,
    )


def _identity(message: ChunkMessage) -> tuple[str, str, str, int, int]:
    return (message.chunkId, message.key, message.etag, message.start, message.end)


def test_every_chunk_of_every_file_is_planned_once_each_in_a_group_of_its_own() -> None:
    messages = _plan().messages()
    assert [_identity(m) for m in messages] == [
        *(
            (f"0.{i}", FILES[0].key, "e1", start, min(start + 4, 10))
            for i, start in enumerate(range(0, 10, 4))
        ),
        *(
            (f"1.{i}", FILES[1].key, "e2", start, min(start + 4, 25))
            for i, start in enumerate(range(0, 25, 4))
        ),
    ]
    groups = [message_group(m) for m in messages]
    assert len(set(groups)) == len(messages) == 10  # no limit: nothing waits for anything
    assert groups[0] == "j.0.0"


@pytest.mark.parametrize("workers", [1, 2, 3, 9, 20])
def test_a_limited_route_spreads_its_chunks_over_exactly_its_worker_groups(workers: int) -> None:
    # Given two jobs of a route limited to `workers`
    first, second = _plan("j1").messages(workers), _plan("j2").messages(workers)
    # Then the same chunks are planned as without a limit
    assert [_identity(m) for m in first] == [_identity(m) for m in _plan("j1").messages()]
    # And both jobs' chunks share the route's groups: at most `workers` of them run at once
    groups = {message_group(m) for m in [*first, *second]}
    assert groups == {f"home.{slot}" for slot in range(min(workers, 10))}
    # And the groups take turns in plan order, so each job's chunks are spread over all of them
    assert [message_group(m) for m in first[:workers]] == [f"home.{i}" for i in range(min(workers, 10))]


def test_the_group_travels_in_the_message_body() -> None:
    [message, *_] = _plan().messages(2)
    assert message_group(ChunkMessage.model_validate_json(message.model_dump_json())) == "home.0"
