"""The submit path's rows of ``make bench``: validation speed against orjson parse-only of the same lines,
and the peak RSS of validating 5M and 50M unique ids (each in a fresh process, data generated as it is
read: nothing big is written but the spool the submit function itself writes to /tmp).

Run alone: ``python bench/submit.py rss N`` prints one JSON object for N unique ids;
``python bench/submit.py parts N`` stages N unique ids as a job's parts would be (past 50M ids or 1 GB:
several), and prints the parts' lines and bytes with the peak RSS (not one of ``make bench``'s rows:
an upload past the limits takes minutes of CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
from rss import peak_rss_mb  # noqa: E402 - bench/rss.py, next to this file

SPEED_LINES = int(os.environ.get("BENCH_SUBMIT_LINES", "2000000"))
QUICK = 10 if os.environ.get("BENCH_QUICK") else 1  # BENCH_QUICK=1: a tenth of the sizes
RSS_IDS = [int(n) // QUICK for n in os.environ.get("BENCH_SUBMIT_RSS_IDS", "5000000,50000000").split(",")]
BLOCK = 20_000  # lines per generated chunk (about 0.5 MB, as S3 hands a body over)


def id_lines(count: int, start: int = 0) -> Iterator[bytes]:
    """``count`` unique ``{"userId":"<hex>"}`` lines, a chunk at a time: 50M of them (ids up to 7 hex
    digits, 21 bytes a line at most) are 1.0 GB, inside Personalize's 1 GB and 50M-record limits."""
    for first in range(start, start + count, BLOCK):
        yield b"".join(b'{"userId":"%x"}\n' % n for n in range(first, min(first + BLOCK, start + count)))


class Counted:
    """A staged writer that keeps nothing (the copy goes to S3 as it is written)."""

    def __init__(self) -> None:
        self.bytes = 0

    def write(self, data: bytes) -> None:
        self.bytes += len(data)

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _CountedParts:
    """StagedParts whose writers keep nothing: each part's lines and bytes, as S3 would get them."""

    def __init__(self) -> None:
        from batchrecs.formats.input_files import MAX_RECORDS
        from batchrecs.submit.parts import StagedParts

        self.staged = StagedParts(Counted, lambda number: Counted(), max_lines=MAX_RECORDS)  # type: ignore[arg-type,return-value]


def parts(ids: int) -> dict[str, object]:
    """Validate ``ids`` unique ids and stage them in parts; the parts and the peak RSS."""
    from batchrecs.routes.config import JobKind
    from batchrecs.submit.validation import validate_upload

    counted = _CountedParts()
    started = time.process_time()
    result = validate_upload(
        id_lines(ids), "users.jsonl", JobKind.USER_PERSONALIZATION, "reject", counted.staged
    )
    counted.staged.close()
    cpu = time.process_time() - started
    assert result.accepted, result.file_problem
    assert result.totals.valid == ids
    staged = [(part.lines, part.bytes) for part in counted.staged.parts] or [(ids, result.staged_bytes)]
    assert sum(lines for lines, _ in staged) == ids
    return {
        "ids": ids,
        "staged_mb": round(result.staged_bytes / 1e6),
        "parts": [{"lines": lines, "mb": round(size / 1e6, 1)} for lines, size in staged],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "cpu_s": round(cpu, 1),
    }


def _validate(chunks: Iterator[bytes] | list[bytes]) -> tuple[int, int]:
    from batchrecs.routes.config import JobKind
    from batchrecs.submit.validation import validate_upload

    staged = Counted()
    result = validate_upload(chunks, "users.jsonl", JobKind.USER_PERSONALIZATION, "reject", staged)  # type: ignore[arg-type]
    assert result.accepted, result.file_problem
    return result.totals.valid, staged.bytes


def speed() -> dict[str, float]:
    """Lines per CPU-second of validation (with the staged copy and the exact duplicate check), and of
    orjson parsing the same lines one by one: the ratio is what batchrecs adds to reading JSON at all."""
    chunks = list(id_lines(SPEED_LINES))
    started = time.process_time()
    valid, _ = _validate(chunks)
    submit = time.process_time() - started
    assert valid == SPEED_LINES
    started = time.process_time()
    for chunk in chunks:
        for line in chunk.splitlines():
            orjson.loads(line)
    parse = time.process_time() - started
    return {
        "lines": SPEED_LINES,
        "submit_lines_per_cpu_s": round(SPEED_LINES / submit),
        "parse_only_lines_per_cpu_s": round(SPEED_LINES / parse),
        "ratio_to_parse_only": round(parse / submit, 2),
    }


def rss(ids: int) -> dict[str, float]:
    """Validate ``ids`` unique ids in this process; its peak RSS and CPU time."""
    started, wall = time.process_time(), time.monotonic()
    valid, staged = _validate(id_lines(ids))
    assert valid == ids
    cpu = time.process_time() - started
    return {
        "ids": ids,
        "input_mb": round(sum(len(b'{"userId":"%x"}\n' % n) for n in range(0, ids, 1000)) * 1000 / 1e6),
        "staged_mb": round(staged / 1e6),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "cpu_s": round(cpu, 1),
        "wall_s": round(time.monotonic() - wall, 1),
        "lines_per_cpu_s": round(ids / cpu),
    }


def rss_rows() -> list[dict[str, float]]:
    rows = []
    for ids in RSS_IDS:
        done = subprocess.run(  # noqa: S603 - this file, in a fresh process: its RSS is this run's alone
            [sys.executable, str(Path(__file__)), "rss", str(ids)], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(done.stdout))
        print(f"submit: {ids:,} unique ids, peak RSS {rows[-1]['peak_rss_mb']} MB", file=sys.stderr)
    return rows


if __name__ == "__main__":
    sys.path[:0] = [str(HERE.parent / "layers" / "batchrecs")]
    if sys.argv[1:2] == ["rss"]:
        print(json.dumps(rss(int(sys.argv[2]))))
    elif sys.argv[1:2] == ["parts"]:
        print(json.dumps(parts(int(sys.argv[2]))))
    else:
        print(json.dumps(speed()))
