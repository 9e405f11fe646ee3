"""``make bench``: the export path's throughput, measured against local DynamoDB-protocol endpoints.

Every rate below is measured in this run, on this machine; ratios compare runs of the same process.

1. orjson parse-only rate of a realistic .out (25 items + 25 scores per line): the transform's limit;
2. the naive baseline: boto3 ``Table.batch_writer().put_item``;
3. batchrecs' export path (parse -> wire records -> signed BatchWriteItem, sharded threads, AIMD);
4. the same against an endpoint capped by a token bucket (UnprocessedItems beyond the cap);
5. peak RSS of a worker process exporting a large .out (flat in file size);
6. the fan-out plan for a 10M-user file.

Results are printed as a table and saved to ``bench/results.json``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import time
import urllib.request
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
LINES = int(os.environ.get("BENCH_LINES", "200000"))
NAIVE_LINES = int(os.environ.get("BENCH_NAIVE_LINES", "20000"))
CAP = int(os.environ.get("BENCH_CAP", "4000"))
CAPPED_SECONDS = float(os.environ.get("BENCH_CAPPED_SECONDS", "12"))
RSS_MB = [int(size) for size in os.environ.get("BENCH_RSS_MB", "256,1024").split(",")]
CHUNK_BYTES = 64 << 20
TABLE = "bench-recommendations"


# ------------------------------------------------------------------------------ the .out file


def write_out_file(path: Path, lines: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    with path.open("wb") as out:
        for user in range(lines):
            items = [str(rng.randrange(1, 200_000)) for _ in range(25)]
            scores = sorted((round(rng.random() / 20, 7) for _ in range(25)), reverse=True)
            out.write(
                orjson.dumps(
                    {
                        "input": {"userId": str(user)},
                        "output": {"recommendedItems": items, "scores": scores},
                        "error": None,
                    }
                )
                + b"\n"
            )
    return path.stat().st_size


# ------------------------------------------------------------------------------ the endpoint


def serve(port: int, cap: float | None, ready: Any) -> None:
    """A DynamoDB-protocol endpoint answering BatchWriteItem at once (or up to ``cap`` items/s).

    asyncio over raw HTTP/1.1 keep-alive: ``http.server`` costs ~3 ms a request here, which would
    measure the endpoint instead of the client. Beyond the cap (a token bucket holding at most a
    tenth of a second of capacity) the items are returned as ``UnprocessedItems``, or the request
    fails with ``ProvisionedThroughputExceededException`` when none fit, as DynamoDB does.
    """
    import asyncio

    keys: set[str] = set()
    counts = {"received": 0, "requests": 0, "throttled": 0}
    bucket = {"tokens": (cap or 0.0) / 10, "last": time.monotonic()}

    def answer(body: bytes) -> tuple[int, bytes]:
        if not body:
            return 200, orjson.dumps({**counts, "unique": len(keys)})
        table, requests = next(iter(orjson.loads(body)["RequestItems"].items()))
        counts["requests"] += 1
        accepted = len(requests)
        if cap is not None:
            now = time.monotonic()
            bucket["tokens"] = min(cap / 10, bucket["tokens"] + (now - bucket["last"]) * cap)
            bucket["last"] = now
            accepted = max(0, min(accepted, int(bucket["tokens"])))
            bucket["tokens"] -= accepted
        for request in requests[:accepted]:
            keys.add(request["PutRequest"]["Item"]["pk"]["S"])
        counts["received"] += accepted
        if accepted == 0:
            counts["throttled"] += 1
            return 400, orjson.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded.",
                }
            )
        rest = requests[accepted:]
        return 200, orjson.dumps({"UnprocessedItems": {table: rest} if rest else {}})

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                status, data = answer(await reader.readexactly(length) if length else b"")
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                    "Content-Type: application/x-amz-json-1.0\r\n"
                    f"x-amz-crc32: {zlib.crc32(data)}\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(connection, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class Endpoint:
    def __init__(self, cap: float | None = None) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(target=serve, args=(self.port, cap, ready), daemon=True)
        self.process.start()
        ready.wait(30)
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/stats") as response:  # noqa: S310 - our loopback endpoint
            return json.loads(response.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.join()


def _environment(url: str) -> None:
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )


# ------------------------------------------------------------------------------ measurements


def _timed(run: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def parse_only(path: Path) -> float:
    from batchrecs.formats.lines import iter_file, iter_lines

    def run() -> int:
        count = 0
        with path.open("rb") as file:
            for line in iter_lines(iter_file(file)):
                orjson.loads(line)
                count += 1
        return count

    count, wall, _ = _timed(run)
    return count / wall


def naive(path: Path, endpoint: Endpoint) -> dict[str, float]:
    import boto3

    _environment(endpoint.url)
    table = boto3.resource("dynamodb").Table(TABLE)

    def run() -> int:
        count = 0
        with path.open("rb") as file, table.batch_writer() as writer:
            for line in file:
                value = orjson.loads(line)
                writer.put_item(
                    Item={
                        "pk": value["input"]["userId"],
                        "sk": "home",
                        "items": value["output"]["recommendedItems"],
                        "scores": [Decimal(str(score)) for score in value["output"]["scores"]],
                        "route": "home",
                        "jobName": "bench",
                        "generatedAt": "2026-11-23T00:00:00Z",
                        "expiresAt": 1798000000,
                    }
                )
                count += 1
                if count >= NAIVE_LINES:
                    break
        return count

    count, wall, cpu = _timed(run)
    return {"items": count, "items_per_s": count / wall, "items_per_cpu_s": count / cpu}


def export_path(
    path: Path, endpoint: Endpoint, limit: int | None = None, threads: int = 4
) -> dict[str, float]:
    """Exactly what an export worker does per line, with the fast writer."""
    from batchrecs.export.chunks import ByteRange, owned_lines
    from batchrecs.export.records import RecordContext, record_item, record_key
    from batchrecs.formats.lines import iter_file
    from batchrecs.formats.output_lines import parse_out_line
    from batchrecs.routes.config import JobKind
    from batchrecs.sinks.fast_dynamodb import AdaptiveRate, ShardedRecordSink, SignedBatchWriter

    _environment(endpoint.url)
    ctx = RecordContext("home", "bench", "2026-11-23T00:00:00Z", 1798000000)
    sink = ShardedRecordSink(TABLE, SignedBatchWriter(), threads=threads, rate=AdaptiveRate(initial=50_000))

    def read_from(offset: int) -> Any:
        with path.open("rb") as file:
            file.seek(offset)
            yield from iter_file(file)

    def run() -> int:
        count = 0
        for _, line in owned_lines(read_from, ByteRange(0, path.stat().st_size)):
            parsed = parse_out_line(line, JobKind.USER_PERSONALIZATION)
            if isinstance(parsed, str):
                continue
            sink.put(record_key(parsed, ctx), record_item(parsed, ctx))
            count += 1
            if limit is not None and count >= limit:
                break
        sink.close()
        return count

    count, wall, cpu = _timed(run)
    return {
        "items": count,
        "items_per_s": count / wall,
        "items_per_cpu_s": count / cpu,
        "seconds": wall,
        "throttles": sink.throttles,
        "written": sink.written + sink.superseded,
    }


def peak_rss(size_mb: int, workdir: Path, endpoint: Endpoint) -> dict[str, float]:
    """Run the export path over a file of ``size_mb`` in a fresh process; report its peak RSS."""
    path = workdir / f"rss-{size_mb}.out"
    line_bytes = len((workdir / "bench.out").read_bytes().split(b"\n", 1)[0]) + 1
    write_out_file(path, size_mb * (1 << 20) // line_bytes, seed=size_mb)
    code = (
        "import json, resource, sys; sys.path[:0] = sys.argv[3:]; from run import export_path, Endpoint;"
        "e = Endpoint.__new__(Endpoint); e.url = sys.argv[2];"
        "r = export_path(__import__('pathlib').Path(sys.argv[1]), e);"
        "print(json.dumps({**r, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    out = subprocess.run(  # noqa: S603 - our own benchmark
        [sys.executable, "-c", code, str(path), endpoint.url, str(HERE)],
        capture_output=True,
        text=True,
        check=True,
    )
    path.unlink()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"file_mb": size_mb, "peak_rss_mb": round(result["peak_rss_mb"], 1), "items": result["items"]}


def main() -> int:
    import tempfile

    workdir = Path(tempfile.mkdtemp(prefix="batchrecs-bench-"))
    out_file = workdir / "bench.out"
    size = write_out_file(out_file, LINES)
    print(f"generated {LINES} lines ({size / 1e6:.1f} MB) in {out_file}", file=sys.stderr)
    results: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "lines": LINES,
    }
    results["parse_only_lines_per_s"] = round(parse_only(out_file))
    instant = Endpoint()
    try:
        results["naive"] = {k: round(v, 1) for k, v in naive(out_file, instant).items()}
        results["batchrecs"] = {k: round(v, 1) for k, v in export_path(out_file, instant).items()}
        results["speedup_vs_naive"] = round(
            results["batchrecs"]["items_per_cpu_s"] / results["naive"]["items_per_cpu_s"], 2
        )
        results["speedup_vs_naive_wall"] = round(
            results["batchrecs"]["items_per_s"] / results["naive"]["items_per_s"], 2
        )
        results["peak_rss"] = [peak_rss(size_mb, workdir, instant) for size_mb in RSS_MB]
        results["peak_rss_mb"] = max(entry["peak_rss_mb"] for entry in results["peak_rss"])
    finally:
        instant.stop()
    capped = Endpoint(cap=CAP)
    try:
        run = export_path(out_file, capped, limit=int(CAP * CAPPED_SECONDS))
        stats = capped.stats()
    finally:
        capped.stop()
    results["capped"] = {
        "cap_items_per_s": CAP,
        **{k: round(v, 1) for k, v in run.items()},
        "stored_unique": stats["unique"],
    }
    results["capped_fraction_of_cap"] = round(run["items_per_s"] / CAP, 3)
    results["items_lost"] = int(run["items"]) - stats["unique"]
    per_worker = results["batchrecs"]["items_per_s"]
    users = 10_000_000
    total_bytes = size / LINES * users
    chunks = int(-(-total_bytes // CHUNK_BYTES))
    lines_per_chunk = users / chunks
    results["fanout_10m_users"] = {
        "output_gb": round(total_bytes / 1e9, 2),
        "chunk_mb": CHUNK_BYTES >> 20,
        "chunks": chunks,
        "seconds_per_chunk_at_measured_rate": round(lines_per_chunk / per_worker, 1),
        "wall_minutes": {
            f"{capacity} wcu, {workers} workers": round(users / min(capacity, workers * per_worker) / 60, 1)
            for capacity, workers in ((4000, 5), (20000, 10), (40000, 20))
        },
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def _print(r: dict[str, Any]) -> None:
    rows = [
        ("1. orjson parse only", f"{r['parse_only_lines_per_s']:,} lines/s"),
        (
            "2. naive Table.batch_writer",
            f"{r['naive']['items_per_s']:,.0f} items/s ({r['naive']['items_per_cpu_s']:,.0f} per CPU-s)",
        ),
        (
            "3. batchrecs export path",
            f"{r['batchrecs']['items_per_s']:,.0f} items/s ({r['batchrecs']['items_per_cpu_s']:,.0f} per CPU-s)",
        ),
        ("   speedup vs naive", f"{r['speedup_vs_naive']}x per core, {r['speedup_vs_naive_wall']}x wall"),
        (
            "4. capped endpoint",
            f"{r['capped']['items_per_s']:,.0f} of {r['capped']['cap_items_per_s']:,} items/s = "
            f"{r['capped_fraction_of_cap']:.0%}, {r['items_lost']} lost, {r['capped']['throttles']:.0f} throttles",
        ),
        ("5. peak RSS", ", ".join(f"{e['file_mb']} MB file: {e['peak_rss_mb']} MB" for e in r["peak_rss"])),
        (
            "6. 10M users",
            f"{r['fanout_10m_users']['output_gb']} GB, {r['fanout_10m_users']['chunks']} chunks of "
            f"{r['fanout_10m_users']['chunk_mb']} MB, {r['fanout_10m_users']['seconds_per_chunk_at_measured_rate']} s each",
        ),
    ]
    rows += [
        ("   wall time", f"{label}: {minutes} min")
        for label, minutes in r["fanout_10m_users"]["wall_minutes"].items()
    ]
    print(f"\nbatchrecs bench on {r['machine']['cores']} cores, Python {r['machine']['python']}")
    for name, value in rows:
        print(f"  {name:<30} {value}")


if __name__ == "__main__":
    sys.exit(main())
