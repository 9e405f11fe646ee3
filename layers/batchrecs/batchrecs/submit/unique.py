"""The first occurrence of every key of an upload, exactly, in memory that does not grow with the keys.

A set of 50 million ids holds 50 million Python strings (about 4.8 GB); ``UniqueLines`` holds none. It
spools the valid lines, in order, to a local file, and each line's key with the line's index to one of
``PARTITIONS`` files picked by the key's hash. ``finish`` then reads one partition at a time, where a
dictionary of its keys finds each key's first line: keys are compared as they are, so two users whose
hashes collide are two users (a bad hash only makes a partition larger, never drops anyone). The
repeats' indices are marked in a byte per line, and ``copy_unique`` writes the spooled lines without
them. Peak memory: one buffer of keys, the largest partition's dictionary and a byte per line.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from typing import IO

from batchrecs.ports import ObjectWriter

PARTITIONS = 128  # two files each: 256 open files (Lambda allows 1,024)
FLUSH_KEYS = 65536  # keys buffered before they go to their partitions
COPY_BYTES = 1 << 20
SPLIT_BYTES = 1 << 20  # a partition with more keys than this is split before its keys are held
SPLIT_BITS = 4  # ... into 16, by the next bits of the hash
SPLIT_MAX_BITS = 47  # a hash with so few distinct values (a test's) is held as it is: slower, still exact
_KEEP = bytes.maketrans(b"\x00\x01", b"\x01\x00")  # a line's drop mark -> whether it is kept


@dataclass(frozen=True)
class Outcome:
    unique: int  # lines kept: the first of each key
    duplicates: int  # lines dropped: a key seen before
    unique_bytes: int | None  # bytes of the kept lines (None when some were added without their line)


class UniqueLines:
    """Add each valid line with its key, in order (``add``, or many at once with ``add_block``); then
    ``finish`` counts the repeats and ``copy_unique`` writes the first occurrences. A line may be left out
    of the copy (``line=None``: only its key counts) once the upload is known to be rejected.
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        hash_key: Callable[[bytes], int] = hash,
        partitions: int = PARTITIONS,
        flush_keys: int = FLUSH_KEYS,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(dir=directory, prefix="batchrecs-unique-")
        self._dir = Path(self._tmp.name)
        self._hash = hash_key
        self._flush_keys = flush_keys
        self._mask = partitions - 1
        if partitions & self._mask:
            raise ValueError("partitions must be a power of two")
        self._keys_out: list[IO[bytes]] = []
        self._index_out: list[IO[bytes]] = []
        self._pending: list[bytes] = []
        self._first_pending = 0  # the index of the first pending key
        self._count = 0  # keys added
        self._lines = (self._dir / "lines").open("wb")
        self._spooled = 0  # bytes of lines spooled
        self._incomplete = False  # a key was added without its line: there is no copy to make
        self._drop: bytearray | None = None
        self._duplicates = 0

    # ------------------------------------------------------------------ adding

    @property
    def count(self) -> int:
        return self._count

    @property
    def spooled_bytes(self) -> int:
        return self._spooled

    def add(self, key: bytes, line: bytes | None) -> None:
        """One valid line (ending in a newline) and its key; ``line`` None: count the key only."""
        self._pending.append(key)
        self._count += 1
        self._line(line)
        if len(self._pending) >= self._flush_keys:
            self._flush()

    def add_block(self, keys: list[bytes], lines: bytes | None) -> None:
        """Many valid lines at once: ``lines`` holds one line (ending in a newline) per key, in order."""
        self._pending.extend(keys)
        self._count += len(keys)
        self._line(lines)
        if len(self._pending) >= self._flush_keys:
            self._flush()

    def _line(self, data: bytes | None) -> None:
        if data is None:
            self._incomplete = True
            return
        if self._incomplete:
            raise ValueError("a line after a key added without its line: the copy would be out of order")
        self._lines.write(data)
        self._spooled += len(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        if not self._keys_out:
            for partition in range(self._mask + 1):
                self._keys_out.append((self._dir / f"keys-{partition}").open("wb"))
                self._index_out.append((self._dir / f"index-{partition}").open("wb"))
        mask, first = self._mask, self._first_pending
        keys: list[list[bytes]] = [[] for _ in range(mask + 1)]
        indices = [array("I") for _ in range(mask + 1)]
        for position, (key, code) in enumerate(
            zip(self._pending, map(self._hash, self._pending), strict=True)
        ):
            keys[code & mask].append(key)
            indices[code & mask].append(first + position)
        for partition, (found, where) in enumerate(zip(keys, indices, strict=True)):
            if found:
                self._keys_out[partition].write(b"\n".join(found) + b"\n")
                where.tofile(self._index_out[partition])
        self._first_pending += len(self._pending)
        self._pending = []

    # ------------------------------------------------------------------ the outcome

    def finish(self) -> Outcome:
        """Find every repeat (reading one partition at a time) and count them."""
        if self._drop is None:
            self._lines.close()
            self._drop = bytearray(self._count)  # 1: a repeat of a key seen on an earlier line
            if self._keys_out:  # keys went to partition files: read back one partition at a time
                self._flush()
                for out in (*self._keys_out, *self._index_out):
                    out.close()
                bits = self._mask.bit_length()
                for partition in range(len(self._keys_out)):
                    keys, index = self._dir / f"keys-{partition}", self._dir / f"index-{partition}"
                    self._mark_repeats(keys, index, bits)
            else:  # fewer keys than one flush, all still here: compared in memory, no partition files
                self._mark_pending_repeats()
        unique_bytes = None if self._incomplete else self._unique_bytes()
        return Outcome(self._count - self._duplicates, self._duplicates, unique_bytes)

    def _mark_pending_repeats(self) -> None:
        """A small upload's keys, compared in memory (as a partition's are): 256 files less to write."""
        assert self._drop is not None
        seen: set[bytes] = set()
        for index, key in enumerate(self._pending):
            if key in seen:
                self._drop[index] = 1
                self._duplicates += 1
            else:
                seen.add(key)
        self._pending = []

    def _mark_repeats(self, keys_path: Path, index_path: Path, bits: int) -> None:
        """Mark the repeats of one partition's keys; a partition too big to hold is split first, by the
        next bits of the keys' hashes, so memory stays flat however many keys there are."""
        assert self._drop is not None
        if keys_path.stat().st_size > SPLIT_BYTES and bits < SPLIT_MAX_BITS:
            for sub_keys, sub_index in self._split(keys_path, index_path, bits):
                self._mark_repeats(sub_keys, sub_index, bits + SPLIT_BITS)
            return
        keys = keys_path.read_bytes().split(b"\n")[:-1]
        where = array("I")
        where.frombytes(index_path.read_bytes())
        first = dict(zip(reversed(keys), reversed(where), strict=True))  # each key's earliest line
        if len(first) == len(keys):
            return
        for key, index in zip(keys, where, strict=True):
            if first[key] != index:
                self._drop[index] = 1
                self._duplicates += 1

    def _split(self, keys_path: Path, index_path: Path, bits: int) -> list[tuple[Path, Path]]:
        """Split a partition into ``2**SPLIT_BITS`` by the hash bits above ``bits``, reading it a slice at
        a time (each keeps its keys in upload order, as the partition did)."""
        ways, parts = 1 << SPLIT_BITS, []
        for way in range(ways):
            parts.append(
                (
                    keys_path.with_name(f"{keys_path.name}.{way}"),
                    index_path.with_name(f"{index_path.name}.{way}"),
                )
            )
        outs = [(k.open("wb"), i.open("wb")) for k, i in parts]
        with keys_path.open("rb") as keys_in, index_path.open("rb") as index_in:
            rest = b""
            while data := keys_in.read(COPY_BYTES):
                data = rest + data
                end = data.rfind(b"\n") + 1
                keys, rest = data[:end].split(b"\n")[:-1], data[end:]
                where = array("I")
                where.frombytes(index_in.read(4 * len(keys)))
                found: list[list[bytes]] = [[] for _ in range(ways)]
                indices = [array("I") for _ in range(ways)]
                for key, index in zip(keys, where, strict=True):
                    way = (self._hash(key) >> bits) & (ways - 1)
                    found[way].append(key)
                    indices[way].append(index)
                for (keys_out, index_out), way_keys, way_indices in zip(outs, found, indices, strict=True):
                    if way_keys:
                        keys_out.write(b"\n".join(way_keys) + b"\n")
                        way_indices.tofile(index_out)
        for keys_out, index_out in outs:
            keys_out.close()
            index_out.close()
        keys_path.unlink()
        index_path.unlink()
        return parts

    def _unique_bytes(self) -> int:
        if not self._duplicates:
            return self._spooled
        return sum(len(chunk) for chunk in self._unique_chunks())

    def copy_unique(self, writer: ObjectWriter) -> int:
        """Write the first occurrence of every key, in upload order; the bytes written."""
        if self._incomplete:
            raise ValueError("the lines were not all spooled: nothing to copy")
        self.finish()
        written = 0
        for chunk in self._unique_chunks():
            writer.write(chunk)
            written += len(chunk)
        return written

    def _unique_chunks(self) -> Iterator[bytes]:
        assert self._drop is not None
        keep = bytes(self._drop).translate(_KEEP) if self._duplicates else None
        index, rest = 0, b""
        with (self._dir / "lines").open("rb") as spool:
            while chunk := spool.read(COPY_BYTES):
                if keep is None:
                    yield chunk
                    continue
                data = rest + chunk
                end = data.rfind(b"\n") + 1
                lines, rest = data[:end].split(b"\n")[:-1], data[end:]
                kept = list(compress(lines, keep[index : index + len(lines)]))
                index += len(lines)
                if kept:
                    yield b"\n".join(kept) + b"\n"

    def close(self) -> None:
        for out in (*self._keys_out, *self._index_out):
            out.close()
        self._lines.close()
        self._tmp.cleanup()

    def __enter__(self) -> UniqueLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
