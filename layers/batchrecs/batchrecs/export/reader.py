"""Stream the lines of a job's .out files with their file and line number."""

from __future__ import annotations

from collections.abc import Iterator

from batchrecs.formats.lines import iter_lines
from batchrecs.ports import ObjectStore

OUT_SUFFIX = ".out"


def output_prefix(output_path: str) -> tuple[str, str]:
    """``s3://bucket/output/route/job/`` -> (bucket, ``output/route/job/``)."""
    if not output_path.startswith("s3://"):
        raise ValueError(f"not an s3:// path: {output_path}")
    bucket, _, prefix = output_path.removeprefix("s3://").partition("/")
    return bucket, prefix


def iter_out_lines(objects: ObjectStore, bucket: str, keys: list[str]) -> Iterator[tuple[str, int, bytes]]:
    for key in keys:
        for number, line in enumerate(iter_lines(objects.iter_chunks(bucket, key)), 1):
            yield key, number, line
