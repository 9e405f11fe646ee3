"""The data bucket's layout: every key batchrecs reads or writes is built here.

    input/<route>/<file>                          uploads (never changed)
    datasets/...                                  interactions for routes' refresh imports (Personalize reads)
    staged/<route>/<job>/<stem>.jsonl             the canonical JSON Lines a job reads
    output/<route>/<job>/<stem>.jsonl.out         Personalize's output
    rejected/<route>/<job>/<file>.report.json     why an upload was rejected (one per upload)
    reports/<job>/validation.json                 skipped lines and duplicates of a submitted file
    reports/<job>/<report>/<chunk>.jsonl          per chunk: errors, missing-addresses
    exports/<job>/contacts/<chunk>.jsonl          SES routes: the contacts a chunk staged
    exports/<job>/removed.jsonl                   replacePrevious: ids of the previous export to delete
    exports/<job>/list-snapshot/<page>.jsonl      SES routes: the contact list's preferences, as read
    ses-imports/<job>/contacts-NNNN.jsonl         SES routes: the import files

template.yaml grants each function and service exactly these prefixes (a test checks that its IAM
resources name no other). A file name inside a derived key is cut to ``MAX_NAME_BYTES`` (with a digest
of the whole name, so it stays unique): an upload's key may be 1,024 bytes, and so may no key derived
from it.
"""

from __future__ import annotations

import hashlib

INPUT = "input/"
STAGED = "staged/"
OUTPUT = "output/"
REJECTED = "rejected/"
REPORTS = "reports/"
EXPORTS = "exports/"
SES_IMPORTS = "ses-imports/"
DATASETS = "datasets/"
PREFIXES = (INPUT, STAGED, OUTPUT, REJECTED, REPORTS, EXPORTS, SES_IMPORTS, DATASETS)

OUT_SUFFIX = ".out"
UNROUTED = "_unrouted"  # rejected files directly under input/ (no route folder)


def route_and_name(key: str) -> tuple[str, str]:
    """``input/<route>/<name>`` -> (route, name); a file directly under ``input/`` has no route."""
    rest = key.removeprefix(INPUT)
    route, _, name = rest.partition("/")
    return (route, name) if name else ("", rest)


MAX_NAME_BYTES = 200
MAX_ROUTE_BYTES = 64  # configured routes have at most 40 characters; an unknown one is cut


def fitted(name: str, limit: int = MAX_NAME_BYTES) -> str:
    """``name``, or when longer than ``limit`` bytes its start and a digest of all of it."""
    data = name.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return name
    digest = hashlib.sha256(data).hexdigest()[:16]
    start = data[: limit - len(digest) - 1].decode("utf-8", "ignore")  # whole characters only
    return f"{start}~{digest}"


def staged_key(route: str, job_name: str, stem: str) -> str:
    return f"{STAGED}{route}/{job_name}/{fitted(stem)}.jsonl"


def output_path(bucket: str, route: str, job_name: str) -> str:
    return f"s3://{bucket}/{OUTPUT}{route}/{job_name}/"


def output_prefix(output_path: str) -> tuple[str, str]:
    """``s3://bucket/output/route/job/`` -> (bucket, ``output/route/job/``)."""
    if not output_path.startswith("s3://"):
        raise ValueError(f"not an s3:// path: {output_path}")
    bucket, _, prefix = output_path.removeprefix("s3://").partition("/")
    return bucket, prefix


def rejected_report_key(route: str, job_name: str, name: str) -> str:
    """Per upload (its job), so two rejected uploads of one name keep a report each."""
    return f"{REJECTED}{fitted(route, MAX_ROUTE_BYTES) or UNROUTED}/{job_name}/{fitted(name)}.report.json"


def validation_report_key(job_name: str) -> str:
    return f"{REPORTS}{job_name}/validation.json"


def chunk_report_key(job_name: str, report: str, chunk_id: str) -> str:
    return f"{REPORTS}{job_name}/{report}/{chunk_id}.jsonl"


def chunk_reports_url(bucket: str, job_name: str, report: str) -> str:
    """Where a job's per-chunk ``report`` files are (``errors``, ``missing-addresses``)."""
    return f"s3://{bucket}/{REPORTS}{job_name}/{report}/"


def staged_contacts_prefix(job_name: str) -> str:
    return f"{EXPORTS}{job_name}/contacts/"


def list_snapshot_prefix(job_name: str) -> str:
    return f"{EXPORTS}{job_name}/list-snapshot/"


def list_snapshot_key(job_name: str, first_page: int) -> str:
    return f"{list_snapshot_prefix(job_name)}{first_page:07d}.jsonl"


def removed_ids_key(job_name: str) -> str:
    return f"{EXPORTS}{job_name}/removed.jsonl"


def staged_contacts_key(job_name: str, chunk_id: str) -> str:
    return f"{staged_contacts_prefix(job_name)}{chunk_id}.jsonl"


def contact_imports_prefix(job_name: str) -> str:
    return f"{SES_IMPORTS}{job_name}/"


def contact_import_key(job_name: str, number: int) -> str:
    return f"{contact_imports_prefix(job_name)}contacts-{number:04d}.jsonl"
