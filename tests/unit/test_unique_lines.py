"""Duplicate ids found exactly in flat memory (issue #16, part 1): ``UniqueLines`` and the submit path."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Iterator

import pytest
from batchrecs.routes.config import JobKind
from batchrecs.submit.unique import UniqueLines
from batchrecs.submit.validation import validate_upload


class Collected:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


class Counted:
    """A writer that keeps nothing (the staged copy goes to S3 as it is written)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)


def _line(key: bytes) -> bytes:
    return b'{"userId":"' + key + b'"}\n'


def _unique(keys: list[bytes], **options: object) -> tuple[int, int, bytes]:
    collected = Collected()
    with UniqueLines(**options) as unique:  # type: ignore[arg-type]
        for key in keys:
            unique.add(key, _line(key))
        outcome = unique.finish()
        unique.copy_unique(collected)  # type: ignore[arg-type]
    assert outcome.unique_bytes == len(collected.data)
    return outcome.unique, outcome.duplicates, bytes(collected.data)


def test_repeats_are_counted_exactly_and_the_first_of_each_key_is_kept_in_order() -> None:
    # Given 20,000 keys drawn with repeats, across many flushes and partitions
    rng = random.Random(7)
    keys = [b"u%d" % rng.randrange(8000) for _ in range(20_000)]
    # When they go through UniqueLines
    unique, duplicates, copy = _unique(keys, flush_keys=1000, partitions=16)
    # Then the counts and the copy are those of an exact first-seen filter
    first_seen = list(dict.fromkeys(keys))
    assert (unique, duplicates) == (len(first_seen), len(keys) - len(first_seen))
    assert copy == b"".join(map(_line, first_seen))


@pytest.mark.parametrize("hash_key", [lambda key: 0, len], ids=["every key collides", "same length collides"])
@pytest.mark.parametrize("flush_keys", [2, 65536], ids=["in partition files", "all in memory"])
def test_keys_whose_hashes_collide_are_both_kept(hash_key: object, flush_keys: int) -> None:
    # Given distinct users whose hashes are equal (a forced collision), and real repeats among them
    keys = [b"alice", b"bobby", b"alice", b"carol", b"bobby", b"dave"]
    # When they go through UniqueLines with that hash (through partition files, or compared in memory
    # when fewer keys than one flush came)
    unique, duplicates, copy = _unique(keys, hash_key=hash_key, partitions=4, flush_keys=flush_keys)
    # Then no user is dropped for sharing a hash: only the real repeats are
    assert (unique, duplicates) == (4, 2)
    assert copy == b"".join(map(_line, [b"alice", b"bobby", b"carol", b"dave"]))


def test_a_key_counted_without_its_line_counts_but_cannot_be_copied() -> None:
    with UniqueLines() as unique:
        unique.add(b"1", _line(b"1"))
        unique.add(b"1", None)  # after the upload was found to be rejected: counted only
        unique.add_block([b"2", b"2"], None)
        outcome = unique.finish()
        assert (outcome.unique, outcome.duplicates, outcome.unique_bytes) == (2, 2, None)
        with pytest.raises(ValueError, match="not all spooled"):
            unique.copy_unique(Collected())  # type: ignore[arg-type]


def _ids(count: int, repeat_every: int = 0) -> Iterator[bytes]:
    block: list[bytes] = []
    for n in range(count):
        block.append(b'{"userId": "user-%09d"}\n' % (n - 1 if repeat_every and n % repeat_every == 0 else n))
        if len(block) == 20_000:
            yield b"".join(block)
            block = []
    if block:
        yield b"".join(block)


def _peak(count: int) -> tuple[int, int, int]:
    tracemalloc.start()
    try:
        result = validate_upload(_ids(count), "u.jsonl", JobKind.USER_PERSONALIZATION, "reject", Counted())  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.accepted
    return peak, result.totals.valid, result.totals.duplicates


def test_the_memory_of_submit_does_not_grow_with_the_number_of_unique_ids() -> None:
    # Given 100,000 and then 300,000 unique ids (a set would hold three times more strings)
    small, valid_small, _ = _peak(100_000)
    large, valid_large, _ = _peak(300_000)
    # Then both are exact, and the peak allocation is the same but for a byte per line
    assert (valid_small, valid_large) == (100_000, 300_000)
    assert large < small + 200_000 + (1 << 20), (small, large)
    assert large < 12 << 20  # a set of 300,000 such ids alone is about 30 MB


def test_duplicates_among_many_ids_are_counted_exactly_on_the_submit_path() -> None:
    # Given 300,000 lines where every 7th repeats the id of the line before it
    staged = Collected()
    result = validate_upload(
        _ids(300_000, repeat_every=7), "u.jsonl", JobKind.USER_PERSONALIZATION, "reject", staged
    )  # type: ignore[arg-type]
    # Then the repeats are counted exactly, and the staged copy holds each id once, in upload order
    repeats = len(range(7, 300_000, 7))  # line 0 has no line before it: its id (-1) is new
    assert (result.totals.valid, result.totals.duplicates) == (300_000 - repeats, repeats)
    expected = [n - 1 if n % 7 == 0 and n else n for n in range(300_000) if not (n % 7 == 0 and n)]
    assert staged.data == b"".join(b'{"userId":"user-%09d"}\n' % n for n in [-1, *expected[1:]])


@pytest.mark.parametrize("hash_key", [hash, lambda key: 0], ids=["python hash", "every key collides"])
def test_a_partition_too_big_to_hold_is_split_and_stays_exact(
    monkeypatch: pytest.MonkeyPatch, hash_key: object
) -> None:
    import batchrecs.submit.unique as unique_module

    monkeypatch.setattr(unique_module, "SPLIT_BYTES", 64)  # every partition over 64 bytes is split
    rng = random.Random(3)
    keys = [b"k%d" % rng.randrange(500) for _ in range(3000)]
    unique, duplicates, copy = _unique(keys, hash_key=hash_key, partitions=2, flush_keys=700)
    first_seen = list(dict.fromkeys(keys))
    assert (unique, duplicates) == (len(first_seen), len(keys) - len(first_seen))
    assert copy == b"".join(map(_line, first_seen))
