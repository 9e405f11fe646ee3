"""The chunks of a job's export, and which chunk follows which when a route limits its workers.

Chunks are numbered in plan order (file by file, byte range by byte range) and named
``<file index>.<range index>``. Without a worker limit every chunk is sent at once. With
``maxExportWorkers: N`` the plan forms N chains: the planner sends chunks ``0 .. N-1`` and the
worker that finishes chunk ``i`` sends chunk ``i + N``. The plan travels in the messages (files,
ETags, sizes, chunk size), so a worker rebuilds the next message without reading anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchrecs.export.chunks import plan_ranges
from batchrecs.formats.events import ChunkChain, ChunkMessage, PlannedFile


@dataclass(frozen=True, slots=True)
class ExportPlan:
    job_name: str
    bucket: str
    generated_at: str
    chunk_bytes: int
    files: Sequence[PlannedFile]

    def messages(self, max_workers: int | None = None) -> list[ChunkMessage]:
        """Every chunk's message in plan order; chained when ``max_workers`` is below the chunk count."""
        ranges = [
            (file_index, range_index, info, chunk)
            for file_index, info in enumerate(self.files)
            for range_index, chunk in enumerate(plan_ranges(info.size, self.chunk_bytes))
        ]
        stride = max_workers if max_workers is not None and max_workers < len(ranges) else None
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
                chain=ChunkChain(
                    index=index, stride=stride, chunkBytes=self.chunk_bytes, files=list(self.files)
                )
                if stride
                else None,
            )
            for index, (file_index, range_index, info, chunk) in enumerate(ranges)
        ]

    def first_sends(self, max_workers: int | None = None) -> list[ChunkMessage]:
        """What the planner sends: every chunk, or the head of each chain."""
        messages = self.messages(max_workers)
        chain = messages[0].chain if messages else None
        return messages[: chain.stride] if chain else messages


def next_in_chain(message: ChunkMessage) -> ChunkMessage | None:
    """The chunk the worker of ``message`` sends when it is done; None at a chain's end or unchained."""
    chain = message.chain
    if chain is None:
        return None
    plan = ExportPlan(message.jobName, message.bucket, message.generatedAt, chain.chunkBytes, chain.files)
    messages = plan.messages(chain.stride)
    following = chain.index + chain.stride
    return messages[following] if following < len(messages) else None
