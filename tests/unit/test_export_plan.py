"""The export plan: every chunk once, and with a worker limit, chains that never exceed it."""

from __future__ import annotations

import random

import pytest
from batchrecs.export.plan import ExportPlan, next_in_chain
from batchrecs.formats.events import ChunkMessage, PlannedFile

FILES = [
    PlannedFile(key="output/home/j/a.jsonl.out", etag="e1", size=10),
    PlannedFile(key="output/home/j/b.jsonl.out", etag="e2", size=25),
    PlannedFile(key="output/home/j/empty.jsonl.out", etag="e3", size=0),
]
PLAN = ExportPlan(
    job_name="j", bucket="data", generated_at="2026-11-23T06:00:00Z", chunk_bytes=4, files=FILES
)


def _identity(message: ChunkMessage) -> tuple[str, str, str, int, int]:
    return (message.chunkId, message.key, message.etag, message.start, message.end)


def test_unlimited_plan_sends_every_chunk_of_every_file_at_once() -> None:
    messages = PLAN.messages()
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
    assert all(m.chain is None for m in messages)
    assert PLAN.first_sends() == messages
    assert PLAN.first_sends(len(messages)) == messages  # a limit the plan does not reach changes nothing
    assert next_in_chain(messages[0]) is None


@pytest.mark.parametrize("workers", [1, 2, 3, 9])
def test_chains_cover_every_chunk_exactly_once(workers: int) -> None:
    # Given a plan of 10 chunks over two files (and an empty one) limited to `workers`
    everything = [_identity(m) for m in PLAN.messages()]
    heads = PLAN.first_sends(workers)
    assert len(heads) == workers
    # When each chain is followed to its end, through messages as SQS carries them (JSON)
    visited = []
    for head in heads:
        message: ChunkMessage | None = head
        while message is not None:
            visited.append(_identity(message))
            message = next_in_chain(ChunkMessage.model_validate_json(message.model_dump_json()))
    # Then every chunk is visited once
    assert sorted(visited) == sorted(everything)
    assert len(visited) == len(set(visited)) == 10


@pytest.mark.parametrize("seed", range(5))
def test_workers_finishing_in_any_order_never_have_more_chunks_in_flight_than_the_limit(seed: int) -> None:
    # Given 3 workers and chunks finishing in a random order
    rng = random.Random(seed)
    in_flight = PLAN.first_sends(3)
    finished: list[str] = []
    most = len(in_flight)
    # When each finished chunk sends the next of its chain
    while in_flight:
        done = in_flight.pop(rng.randrange(len(in_flight)))
        finished.append(done.chunkId)
        if (following := next_in_chain(done)) is not None:
            in_flight.append(following)
        most = max(most, len(in_flight))
    # Then at most 3 were ever in flight and every chunk finished once
    assert most == 3
    assert sorted(finished) == sorted(m.chunkId for m in PLAN.messages())
