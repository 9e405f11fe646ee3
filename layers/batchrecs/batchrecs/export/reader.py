"""Where a job's output lives."""

from __future__ import annotations

OUT_SUFFIX = ".out"


def output_prefix(output_path: str) -> tuple[str, str]:
    """``s3://bucket/output/route/job/`` -> (bucket, ``output/route/job/``)."""
    if not output_path.startswith("s3://"):
        raise ValueError(f"not an s3:// path: {output_path}")
    bucket, _, prefix = output_path.removeprefix("s3://").partition("/")
    return bucket, prefix
