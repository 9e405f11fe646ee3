"""Deterministic Personalize job names: one name per upload, the same for every delivery of its event."""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

MAX_JOB_NAME = 63
_DIGEST_LENGTH = 12
_INVALID = re.compile(r"[^A-Za-z0-9_-]+")
_EXTENSIONS = (".gz", ".json", ".jsonl", ".ndjson", ".csv", ".txt")


def file_stem(key: str) -> str:
    """The object's file name without the extensions we accept (``users.jsonl.gz`` -> ``users``)."""
    name = PurePosixPath(key).name
    changed = True
    while changed:
        changed = False
        for extension in _EXTENSIONS:
            if name.lower().endswith(extension) and len(name) > len(extension):
                name = name[: -len(extension)]
                changed = True
    return name


def job_name(route: str, key: str, identity: str) -> str:
    """``<route>-<stem>-<digest>``, at most 63 chars of ``[A-Za-z0-9_-]`` starting alphanumeric.

    The digest covers the full key and the object identity (version id or event sequencer), so a
    re-upload of the same key is a new job while a redelivered event names the same job.
    """
    digest = hashlib.sha256(f"{key}\n{identity}".encode()).hexdigest()[:_DIGEST_LENGTH]
    base = _INVALID.sub("-", f"{route}-{file_stem(key)}").strip("-_")
    base = base[: MAX_JOB_NAME - _DIGEST_LENGTH - 1].rstrip("-_")
    return f"{base}-{digest}" if base else f"job-{digest}"


def scheduled_job_name(route: str, key: str, scheduled_time: str) -> str:
    """``<route>-<stem>-<YYYYMMDDTHHMM>-<digest>`` for a schedule's run of ``key`` at ``scheduled_time``
    (ISO 8601): every delivery of one tick names the same job, two ticks two jobs."""
    moment = re.sub(r"[^0-9T]", "", scheduled_time)[:13]  # 2026-12-07T06:00:00Z -> 20261207T0600
    digest = hashlib.sha256(f"{key}\nscheduled {scheduled_time}".encode()).hexdigest()[:_DIGEST_LENGTH]
    stem = _INVALID.sub("-", f"{route}-{file_stem(key)}").strip("-_")
    room = MAX_JOB_NAME - _DIGEST_LENGTH - len(moment) - 2
    return f"{stem[:room].rstrip('-_')}-{moment}-{digest}"


def job_arn(solution_version_arn: str, job_name: str, segment: bool) -> str:
    """The ARN Personalize gives a job: same partition, region and account as the solution version."""
    partition, service, region, account = solution_version_arn.split(":")[1:5]
    resource = "batch-segment-job" if segment else "batch-inference-job"
    return f"arn:{partition}:{service}:{region}:{account}:{resource}/{job_name}"


def part_job_name(upload_job: str, number: int) -> str:
    """The job of part ``number`` (from 1) of an upload run as several jobs: ``<start>-p<number>-<digest>``,
    the upload job's name with the part's number before its digest (the same for every delivery)."""
    start, _, digest = upload_job.rpartition("-")
    suffix = f"-p{number}-{digest}"
    return f"{start[: MAX_JOB_NAME - len(suffix)].rstrip('-_')}{suffix}"
