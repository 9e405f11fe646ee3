"""Local spool files for work whose size is that of the data (millions of ids or contacts): the function's
ephemeral storage (/tmp) holds it, a partition at a time is in memory."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def spool_directory() -> str | None:
    """``BATCHRECS_SPOOL_DIR`` if set, else the system's temporary directory (on Lambda, /tmp)."""
    return os.environ.get("BATCHRECS_SPOOL_DIR") or None


SPLIT_BYTES = 4 << 20  # a partition bigger than this is split before it is held
SPLIT_WAYS = 16
SPLIT_MAX_DEPTH = 6  # a hash with few distinct values (a test's) stops splitting: slower, still exact


class Partitions:
    """Lines of several streams, partitioned by a key: every line of a key, whatever its stream, lands in
    the same partition, in the order added. ``each`` then hands over one partition at a time: for each
    stream, its lines there. A partition bigger than ``SPLIT_BYTES`` is first split by more bits of the
    keys' hashes (``key_of`` reads a line's key again), so what is held stays about that size however
    much was added. Until the lines added pass ``SPLIT_BYTES`` in all, they are held in memory, and no
    spool file is written (a few thousand contacts: 512 files less to open, write and read).
    """

    def __init__(
        self,
        streams: int,
        key_of: Callable[[int, bytes], bytes],
        partitions: int = 256,
        hash_key: Callable[[bytes], int] = hash,
        directory: str | None = None,
    ) -> None:
        self._streams, self._count, self._hash, self._key_of = streams, partitions, hash_key, key_of
        self._directory = directory
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._files: list[list[IO[bytes]]] = []
        # the lines of each stream and partition, until they are spooled (then None)
        self._memory: list[list[list[bytes]]] | None = [
            [[] for _ in range(partitions)] for _ in range(streams)
        ]
        self._memory_bytes = 0

    def add(self, stream: int, key: bytes, line: bytes) -> None:
        """``line`` (ending in a newline) of ``stream``, in the partition of ``key``."""
        partition = self._hash(key) % self._count
        if self._memory is None:
            self._files[stream][partition].write(line)
            return
        self._memory[stream][partition].append(line)
        self._memory_bytes += len(line)
        if self._memory_bytes > SPLIT_BYTES:
            self._spool(self._memory)

    def _spool(self, memory: list[list[list[bytes]]]) -> None:
        self._tmp = tempfile.TemporaryDirectory(
            dir=self._directory or spool_directory(), prefix="batchrecs-parts-"
        )
        self._dir = Path(self._tmp.name)
        self._files = [
            [(self._dir / f"{stream}-{partition}").open("wb") for partition in range(self._count)]
            for stream in range(self._streams)
        ]
        for files, partitions in zip(self._files, memory, strict=True):
            for file, lines in zip(files, partitions, strict=True):
                file.writelines(lines)
        self._memory = None

    def each(self) -> Iterator[list[list[bytes]]]:
        """Each partition, a list of lines per stream (without their newlines)."""
        if self._memory is not None:
            memory = self._memory
            for partition in range(self._count):
                yield [b"".join(memory[stream][partition]).splitlines() for stream in range(self._streams)]
            return
        for files in self._files:
            for file in files:
                file.close()
        for partition in range(self._count):
            yield from self._held(str(partition), self._count, 0)

    def _held(self, name: str, divisor: int, depth: int) -> Iterator[list[list[bytes]]]:
        paths = [self._dir / f"{stream}-{name}" for stream in range(self._streams)]
        if sum(path.stat().st_size for path in paths) <= SPLIT_BYTES or depth >= SPLIT_MAX_DEPTH:
            yield [path.read_bytes().splitlines() for path in paths]
            return
        for stream, path in enumerate(paths):  # split by the hash's next digit (base SPLIT_WAYS)
            outs = [(self._dir / f"{stream}-{name}.{way}").open("wb") for way in range(SPLIT_WAYS)]
            with path.open("rb") as lines:
                for line in lines:
                    outs[self._hash(self._key_of(stream, line)) // divisor % SPLIT_WAYS].write(line)
            for out in outs:
                out.close()
            path.unlink()
        for way in range(SPLIT_WAYS):
            yield from self._held(f"{name}.{way}", divisor * SPLIT_WAYS, depth + 1)

    def close(self) -> None:
        for files in self._files:
            for file in files:
                file.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        self._memory = None

    def __enter__(self) -> Partitions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
