"""The SES merge at size (issue #16, part 3): an export's staged contacts and the list's snapshot are
partitioned by address to /tmp and merged a partition at a time; the result must be the same merge."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from batchrecs.sinks.ses.contacts import ContactImporter
from batchrecs.sinks.ses.settings import SesDestination
from batchrecs.spool import Partitions

from tests.fakes import FakeObjects

JOB = "weekly-email-users-1"
DESTINATION = SesDestination(type="ses", contactList="l", topic="weekly", address={"type": "userId"})


def _staged(email: str, job: str, items: list[str]) -> bytes:
    return orjson.dumps(
        {"emailAddress": email, "topics": ["weekly"], "attributes": {"jobName": job, "items": items}}
    )


def test_partitions_keep_each_keys_lines_together_in_the_order_added() -> None:
    with Partitions(streams=2, key_of=lambda stream, line: line, partitions=4, hash_key=len) as parts:
        for stream, key, line in [(0, b"aa", b"1"), (1, b"bb", b"2"), (0, b"c", b"3"), (0, b"dd", b"4")]:
            parts.add(stream, key, line + b"\n")
        found = list(parts.each())
    assert found[2] == [[b"1", b"4"], [b"2"]] and found[1] == [[b"3"], []]  # len 2 and len 1


def test_partitions_held_in_memory_hand_over_what_spooled_ones_do(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import batchrecs.spool as spool

    added = [(n % 2, b"key%d" % (n % 37), b"line %d of key %d\n" % (n, n % 37)) for n in range(400)]

    def each(split_bytes: int) -> tuple[list[list[list[bytes]]], bool]:
        monkeypatch.setattr(spool, "SPLIT_BYTES", split_bytes)
        with Partitions(
            streams=2,
            key_of=lambda stream, line: line,
            partitions=8,
            hash_key=lambda key: int(key[3:]),  # five keys a partition: about 1 KB each, none split
            directory=str(tmp_path),
        ) as parts:
            for stream, key, line in added:
                parts.add(stream, key, line)
            spooled = any(tmp_path.iterdir())
            return list(parts.each()), spooled

    held, spooled = each(1 << 20)
    assert not spooled  # 8 KB of lines: held in memory, no file written
    assert each(4096) == (held, True)  # past 4 KB in all they go to spool files, and come back the same
    assert sorted(line + b"\n" for partition in held for lines in partition for line in lines) == sorted(
        line for _, _, line in added
    )


@pytest.mark.parametrize(
    ("partitions", "split_bytes"),
    [(1, 1 << 30), (7, 1 << 30), (256, 1 << 30), (2, 4096)],
    ids=["one partition", "seven", "256", "two, each split (4 KB)"],
)
def test_the_partitioned_merge_keeps_every_opt_out_and_merges_each_address_once(
    monkeypatch: pytest.MonkeyPatch, partitions: int, split_bytes: int
) -> None:
    import batchrecs.sinks.ses.contacts as contacts
    import batchrecs.spool as spool

    monkeypatch.setattr(contacts, "MERGE_PARTITIONS", partitions)
    monkeypatch.setattr(spool, "SPLIT_BYTES", split_bytes)  # a partition bigger than this is split
    rng = random.Random(11)
    objects = FakeObjects()
    # Given 3,000 staged contacts in two chunk files (the second repeats 500 of them, with newer items)
    first = b"\n".join(_staged(f"user{n}@example.com", JOB, ["1"]) for n in range(3000))
    again = b"\n".join(_staged(f"USER{n}@example.com", JOB, ["2"]) for n in range(500))
    objects.put("data", f"exports/{JOB}/contacts/1.1.jsonl", first + b"\n")
    objects.put("data", f"exports/{JOB}/contacts/2.1.jsonl", again + b"\n")
    # And a list where some of them unsubscribed from everything or opted out of the topic
    unsubscribed = set(rng.sample(range(3000), 300))
    topic_out = set(rng.sample(sorted(set(range(3000)) - unsubscribed), 200))
    snapshot = [
        {
            "e": f"User{n}@Example.com",
            "u": n in unsubscribed,
            "t": {"weekly": "OPT_OUT"} if n in topic_out else {},
        }
        for n in sorted(unsubscribed | topic_out)
    ]
    objects.put(
        "data",
        f"exports/{JOB}/list-snapshot/0000000.jsonl",
        b"".join(orjson.dumps(c) + b"\n" for c in snapshot),
    )
    # When the merge runs
    plan = ContactImporter(objects, lists=None).merge("data", JOB, DESTINATION)  # type: ignore[arg-type]
    # Then each address is imported once, none of those who opted out, with its latest chunk's items
    records = [orjson.loads(line) for key in plan.files for line in objects.read("data", key).splitlines()]
    by_address = {r["emailAddress"].lower(): r for r in records}
    assert len(by_address) == len(records) == 3000 - 500
    assert plan.counts["optedOut"] == 500 and plan.counts["topicOptOutsKept"] == 200
    assert not {f"user{n}@example.com" for n in unsubscribed | topic_out} & by_address.keys()
    for n in set(range(500)) - unsubscribed - topic_out:
        assert orjson.loads(by_address[f"user{n}@example.com"]["attributesData"])["items"] == ["2"]
    assert all(
        r["topicPreferences"] == [{"topicName": "weekly", "subscriptionStatus": "OPT_IN"}] for r in records
    )


def test_a_partition_of_one_hash_stops_splitting_and_stays_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    import batchrecs.spool as spool

    monkeypatch.setattr(spool, "SPLIT_BYTES", 8)
    with Partitions(
        streams=1, key_of=lambda stream, line: line, partitions=2, hash_key=lambda key: 0
    ) as parts:
        for n in range(50):
            parts.add(0, b"%d" % n, b"%d\n" % n)
        held = [lines for (lines,) in parts.each() if lines]
    assert held == [[b"%d" % n for n in range(50)]]  # every key collides: one partition, in order
