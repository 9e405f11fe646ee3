"""What one million users cost per destination, at on-demand prices, from this run's measured rates.

Record sizes are those of the records batchrecs really writes: ``.out`` lines of the route's
``numResults`` items and scores, parsed by ``formats.output_lines`` and encoded by
``sinks.dynamodb.records`` with a realistic context (route, job name, dates, solution version), sized by
DynamoDB's rules ("DynamoDB item sizes and formats", developer guide): a write costs one write request
unit per started KB. Lambda time comes from the rates this run measured (submit lines and worker items
per CPU-second; a function with 1,769 MB has one vCPU, so CPU-seconds are its seconds).
"""

from __future__ import annotations

import math
import random
import statistics
from decimal import Decimal
from typing import Any

import orjson

# On-demand prices, us-east-1, as the AWS pricing pages publish them (read 2026-12-02; the DynamoDB
# on-demand prices are those in force since the 2024-11-01 reduction). Change them for your region.
PRICES = {
    # aws.amazon.com/dynamodb/pricing/on-demand: per million write / read request units
    "dynamodb_wru": 0.625 / 1e6,
    "dynamodb_rru": 0.125 / 1e6,
    # aws.amazon.com/lambda/pricing: x86, per GB-second and per request
    "lambda_gb_s": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    # aws.amazon.com/s3/pricing: S3 Standard, PUT/COPY/POST/LIST and GET, per request
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
    # aws.amazon.com/sqs/pricing: FIFO queues, per request (64 KB chunks)
    "sqs_fifo_request": 0.50 / 1e6,
    # aws.amazon.com/eventbridge/pricing: custom events put on a bus, per event
    "eventbridge_event": 1.00 / 1e6,
    # aws.amazon.com/ses/pricing lists charges for sending, not for contact lists or import jobs; none is
    # counted here (what SES charges to send the campaign is not part of the export)
    "ses_import_job": 0.0,
}
MEMORY_GB = {"submit": 1769 / 1024, "planner": 512 / 1024, "worker": 1769 / 1024, "monitor": 2048 / 1024}
USERS = 1_000_000
CHUNK_BYTES = 64 << 20  # the template's ExportChunkBytes
PLANNER_SECONDS = 2.0  # assumed, not measured: the planner lists the .out files and sends the chunks
MONITOR_SECONDS_PER_JOB = 30 * 1.0  # assumed: ~30 minute ticks see a job through, about 1 s each


def dynamodb_item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: names and values; numbers 1 byte per two significant digits
    plus 1; lists and maps 3 bytes plus 1 per element."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = str(Decimal(inner).normalize()).replace("-", "").replace(".", "").split("E")[0].strip("0")
        return math.ceil(len(digits or "0") / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(element) for name, element in inner.items())
    raise ValueError(f"no size rule for DynamoDB type {kind}")


def record_sizes(per_line: int, lines: int = 1000, seed: int = 5) -> list[int]:
    """The sizes of ``lines`` records of ``per_line`` items, as batchrecs encodes them."""
    from datetime import UTC, datetime

    from batchrecs.formats.output_lines import parse_out_line
    from batchrecs.routes.config import JobKind
    from batchrecs.sinks.dynamodb.records import RecordContext, record_item

    rng = random.Random(seed)
    context = RecordContext.for_job(
        "home",
        "home-users-2026-12-02-3f9a2c41b7de",  # a job name as batchrecs makes them
        datetime(2026, 12, 2, 6, 0, tzinfo=UTC),
        30,
        "arn:aws:personalize:us-east-1:123456789012:solution/shop-user-personalization/a1b2c3d4",
    ).encoded()
    sizes = []
    for user in range(lines):
        items = [str(rng.randrange(1, 2_000_000)) for _ in range(per_line)]
        scores = sorted((round(rng.random() / 20, 7) for _ in range(per_line)), reverse=True)
        line = orjson.dumps(
            {
                "input": {"userId": f"{rng.randrange(10**8):08d}"},
                "output": {"recommendedItems": items, "scores": scores},
            }
        )
        parsed = parse_out_line(line, JobKind.USER_PERSONALIZATION)
        assert not isinstance(parsed, str), parsed
        sizes.append(dynamodb_item_size(orjson.loads(record_item(parsed, context))))
        del user
    return sizes


def _distribution(sizes: list[int]) -> dict[str, float]:
    ordered = sorted(sizes)
    return {
        "min": ordered[0],
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[int(len(ordered) * 0.99)],
        "max": ordered[-1],
        "mean": round(statistics.fmean(ordered), 1),
        "wru_per_record": round(statistics.fmean(math.ceil(size / 1024) for size in ordered), 3),
    }


def cost_per_million(measured: dict[str, Any], out_bytes_per_user: float) -> dict[str, Any]:
    """Per destination: each part's dollars for a million users, beside the floor."""
    p, users = PRICES, USERS
    submit_s = users / measured["submit_lines_per_cpu_s"]
    worker_s = users / measured["worker_items_per_cpu_s"]
    chunks = math.ceil(users * out_bytes_per_user / CHUNK_BYTES)
    lambda_common = {
        "lambda_submit": submit_s * MEMORY_GB["submit"] * p["lambda_gb_s"] + p["lambda_request"],
        "lambda_planner": PLANNER_SECONDS * MEMORY_GB["planner"] * p["lambda_gb_s"] + p["lambda_request"],
        "lambda_workers": worker_s * MEMORY_GB["worker"] * p["lambda_gb_s"] + chunks * p["lambda_request"],
        "lambda_monitor": MONITOR_SECONDS_PER_JOB * MEMORY_GB["monitor"] * p["lambda_gb_s"],
        # upload read, staged multipart (8 MB parts) and Personalize's read and write, a range read per
        # chunk, a report
        "s3": (2 + chunks + 1) * p["s3_get"] + (2 * math.ceil(users * 22 / (8 << 20)) + 2) * p["s3_put"],
        "sqs": 3 * chunks * p["sqs_fifo_request"],  # send, receive, delete
        "eventbridge": 8 * p["eventbridge_event"],  # the job's state changes and its completion
    }
    result: dict[str, Any] = {"chunks_at_25": chunks}
    base = statistics.fmean(record_sizes(25))
    for per_line in (25, 100, 500):
        sizes = record_sizes(per_line)
        dist = _distribution(sizes)
        scale = dist["mean"] / base  # the worker's rate was measured on lines of 25 items: bytes bound it
        parts = {
            "dynamodb_writes": users * dist["wru_per_record"] * p["dynamodb_wru"],
            **lambda_common,
            "lambda_workers": lambda_common["lambda_workers"] * scale,
        }
        floor = users * p["dynamodb_wru"]  # one write unit per record
        total = sum(parts.values())
        result[f"dynamodb_numResults_{per_line}"] = {
            "record_bytes": dist,
            "usd": {name: round(value, 6) for name, value in parts.items()},
            "total_usd": round(total, 4),
            "floor_usd": round(floor, 4),
            "over_floor": round(total / floor - 1, 4),
        }
    # SES: no table writes; the worker looks addresses up in the directory (BatchGetItem, eventually
    # consistent: half a read unit per item of up to 4 KB), the monitor writes import files of 1M. The
    # worker's time is taken at the DynamoDB worker's rate: an SES export's worker is not benchmarked
    ses_parts = {
        "directory_reads": users * 0.5 * p["dynamodb_rru"],
        **lambda_common,
        "s3_contacts": 3 * p["s3_put"] + 2 * p["s3_get"],  # staged contacts, the import file, SES's read
        "ses_import_jobs": math.ceil(users / 1_000_000) * p["ses_import_job"],
    }
    ses_floor = users * 0.5 * p["dynamodb_rru"]  # the lookups themselves
    ses_total = sum(ses_parts.values())
    result["ses"] = {
        "usd": {name: round(value, 6) for name, value in ses_parts.items()},
        "total_usd": round(ses_total, 4),
        "floor_usd": round(ses_floor, 4),
        "over_floor": round(ses_total / ses_floor - 1, 4),
    }
    return result
