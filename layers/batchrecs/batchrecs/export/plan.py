"""The chunks of a job's export, and the queue groups that bound a route's workers.

Chunks are numbered in plan order (file by file, byte range by byte range) and named
``<file index>.<range index>``. The chunks queue is a FIFO queue, which hands out one message of a
message group at a time (the next only when the previous is deleted or dead-lettered), so the
group is the concurrency limit: a route with ``maxExportWorkers: N`` puts chunk ``i`` of every job in
group ``<route>.<i mod N>``, and at most N of the route's chunks run at once, however many of its jobs
export together. Chunks of unlimited routes each have a group of their own (``<job>.<chunk>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchrecs.export.chunks import plan_ranges
from batchrecs.formats.events import ChunkMessage
from batchrecs.ports import ObjectInfo


@dataclass(frozen=True, slots=True)
class ExportPlan:
    job_name: str
    route: str
    bucket: str
    generated_at: str
    chunk_bytes: int
    files: Sequence[ObjectInfo]

    def messages(self, max_workers: int | None = None) -> list[ChunkMessage]:
        """Every chunk's message in plan order, in the route's worker groups when it has a limit."""
        ranges = [
            (file_index, range_index, info, chunk)
            for file_index, info in enumerate(self.files)
            for range_index, chunk in enumerate(plan_ranges(info.size, self.chunk_bytes))
        ]
        return [
            ChunkMessage(
                jobName=self.job_name,
                chunkId=f"{file_index}.{range_index}",
                bucket=self.bucket,
                key=info.key,
                etag=info.etag,
                start=chunk.start,
                end=chunk.end,
                generatedAt=self.generated_at,
                group=f"{self.route}.{index % max_workers}" if max_workers else None,
            )
            for index, (file_index, range_index, info, chunk) in enumerate(ranges)
        ]


def message_group(message: ChunkMessage) -> str:
    """The FIFO message group of a chunk: its route's worker slot, or a group of its own."""
    return message.group or f"{message.jobName}.{message.chunkId}"
