"""``replacePrevious``: an export that replaces its route's previous one.

The ids of the previous export's staged input that are not in this job's staged input are written,
one JSON string per line, to ``exports/<job>/removed.jsonl``; the planner sends that file's byte ranges
as chunks too (``remove: true``), which the workers turn into deletions of the route's records. The
records of ids still in the new input are overwritten by its own chunks, so readers never see a gap.

Memory: this job's ids are held in a set while the previous input streams past (measured: 1 million
13-character ids take 96 MB in CPython, so some 3 million ids fit the planner's 512 MB).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from batchrecs import layout
from batchrecs.errors import ExportError
from batchrecs.formats.lines import iter_lines
from batchrecs.jobs.model import Job
from batchrecs.ports import ObjectInfo, ObjectStore
from batchrecs.routes.config import Route


def staged_ids(objects: ObjectStore, staged_path: str, key_field: str) -> Iterator[str]:
    """The ids of a job's staged input (validated: one line per id, each id once)."""
    bucket, _, key = staged_path.removeprefix("s3://").partition("/")
    for line in iter_lines(objects.iter_chunks(bucket, key)):
        yield orjson.loads(line)[key_field]


def write_removals(
    objects: ObjectStore,
    job: Job,
    previous: str,
    previous_staged: list[str | None],
    route: Route,
    bucket: str,
) -> ObjectInfo:
    """Write the ids of the ``previous`` export (its staged inputs: one, or one per part) that ``job``
    no longer has; the file's info (written once: a planner run again reuses it, so the chunks it
    planned stay the same)."""
    key = layout.removed_ids_key(job.jobName)
    existing = _info(objects, bucket, key)
    if existing is not None:
        return existing
    if not job.stagedPath or not previous_staged or not all(previous_staged):
        raise ExportError(f"cannot replace export {previous}: it or this job has no staged input to compare")
    field = route.kind.key_field
    current = set(staged_ids(objects, job.stagedPath, field))
    writer = objects.writer(bucket, key, "application/x-ndjson")
    try:
        for path in previous_staged:
            for record_id in staged_ids(objects, path or "", field):
                if record_id not in current:
                    writer.write(orjson.dumps(record_id) + b"\n")
    except BaseException:
        writer.abort()
        raise
    writer.close()
    info = _info(objects, bucket, key)
    if info is None:
        raise ExportError(f"{key} was written but is not listed")
    return info


def _info(objects: ObjectStore, bucket: str, key: str) -> ObjectInfo | None:
    return next((info for info in objects.list_objects(bucket, key) if info.key == key), None)
