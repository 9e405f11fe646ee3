"""``make bench``: the export path's throughput, measured against local DynamoDB-protocol endpoints.

Every rate below is measured in this run, on this machine; ratios compare runs of the same process.

1. orjson parse-only rate of a realistic .out (25 items + 25 scores per line): the transform's limit;
2. the naive baseline: boto3 ``Table.batch_writer().put_item``;
3. batchrecs' export path (parse -> wire records -> signed BatchWriteItem, sharded threads, AIMD);
4. the same against an endpoint capped by a token bucket (UnprocessedItems beyond the cap);
5. peak RSS of a worker process exporting a large .out (flat in file size);
6. the fan-out plan for a 10M-user file;
7. the submit path: validation lines per CPU-second against orjson parse-only of the same lines, and
   the peak RSS of validating 5M and 50M unique ids (``bench/submit.py``); the SES import step's merge
   of 1M and 10M contacts (``bench/ses.py``);
8. the cost of a million users per destination (``bench/cost.py``);
9. the local cloud's start: ``batchrecs local run`` of a small file and ``batchrecs demo``, and where a
   local run's seconds go (``bench/local_start.py``).

``BENCH_QUICK=1`` runs the submit and SES rows at a tenth of their sizes (5M -> 500k ids...).

Results are printed as a table and saved to ``bench/out/results.json`` (not tracked: a run of record is
copied to ``docs/bench/`` by hand, with its date).
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
sys.path[:0] = [str(HERE.parent)]  # tests.fakes: the in-memory jobs table the bench's worker counts on
LINES = int(os.environ.get("BENCH_LINES", "200000"))
CAP = int(os.environ.get("BENCH_CAP", "0"))  # 0: half this client's uncapped rate, at most 4,000/s
CAPPED_SECONDS = float(os.environ.get("BENCH_CAPPED_SECONDS", "12"))
RSS_MB = [int(size) for size in os.environ.get("BENCH_RSS_MB", "128,1024").split(",")]
ROUNDS = 3  # parse-only rate: the best of this many passes
SLICES = int(os.environ.get("BENCH_SLICES", "20"))
CAPACITIES = ((4000, 5), (20000, 10), (40000, 20))  # table writes/s and export workers, for the 10M plan
SLICE_LINES = int(os.environ.get("BENCH_SLICE_LINES", "4000"))  # batchrecs exports this much of each slice
NAIVE_SHARE = 10  # the naive path exports this fraction of each slice (it is that much slower)
LATENCY_S = 0.010  # the network round trip of the latency run (the issue measured naive at 10 ms)
LATENCY_ITEMS = 20000  # batchrecs' items in the latency run (the naive path: a tenth)
RSS_ITEMS_PER_LINE = 500  # numResults' maximum: a GB of output in fewer, longer lines
CHUNK_BYTES = 64 << 20
BENCH_ROUTE = """routes:
  home:
    kind: user-personalization
    solutionVersionArn: arn:aws:personalize:us-east-1:123456789012:solution/bench/1
    destination: {type: dynamodb, ttlDays: 30}
"""
TABLE = "bench-recommendations"


# ------------------------------------------------------------------------------ the .out file


def write_out_file(path: Path, lines: int, seed: int = 1, per_line: int = 25) -> int:
    """A .out of ``lines`` users with ``per_line`` items and 7-digit scores each, as Personalize writes."""
    rng = random.Random(seed)
    pool = [str(rng.randrange(1, 200_000)) for _ in range(4096)]
    score_pool = sorted((round(rng.random() / 20, 7) for _ in range(4096)), reverse=True)
    with path.open("wb") as out:
        for user in range(lines):
            start = rng.randrange(0, len(pool) - per_line)
            out.write(
                orjson.dumps(
                    {
                        "input": {"userId": str(user)},
                        "output": {
                            "recommendedItems": pool[start : start + per_line],
                            "scores": score_pool[start : start + per_line],
                        },
                        "error": None,
                    }
                )
                + b"\n"
            )
    return path.stat().st_size


# ------------------------------------------------------------------------------ the endpoint


def serve(port: int, cap: float | None, ready: Any, latency: float = 0.0) -> None:
    """A DynamoDB-protocol endpoint answering BatchWriteItem at once (or up to ``cap`` items/s).

    ``latency`` delays every answer (per connection, as a network round trip would).

    asyncio over raw HTTP/1.1 keep-alive: ``http.server`` costs ~3 ms a request here, which would
    measure the endpoint instead of the client. Beyond the cap (a token bucket holding at most one
    second of capacity - DynamoDB itself banks up to 300 s of unused capacity - and starting empty, so
    no run can store more than ``cap`` items a second on average) the items are returned as
    ``UnprocessedItems``, or the request fails with ``ProvisionedThroughputExceededException`` when
    none fit, as DynamoDB does.
    """
    import asyncio

    keys: set[str] = set()
    counts = {"received": 0, "requests": 0, "throttled": 0}
    bucket = {"tokens": 0.0, "last": None}  # the clock starts at the first request

    def answer(body: bytes) -> tuple[int, bytes]:
        if not body:
            return 200, orjson.dumps({**counts, "unique": len(keys)})
        counts["requests"] += 1
        if cap is None:  # instant: count the items, keep nothing (the RSS run sends a gigabyte)
            counts["received"] += body.count(b'"PutRequest"')
            return 200, b'{"UnprocessedItems":{}}'
        table, requests = next(iter(orjson.loads(body)["RequestItems"].items()))
        accepted = len(requests)
        now = time.monotonic()
        bucket["last"] = bucket["last"] or now
        bucket["tokens"] = min(cap, bucket["tokens"] + (now - bucket["last"]) * cap)
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
                if latency:
                    await asyncio.sleep(latency)
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
    def __init__(self, cap: float | None = None, latency: float = 0.0) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=serve, args=(self.port, cap, ready, latency), daemon=True
        )
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

    return max(count / wall for count, wall, _ in (_timed(run) for _ in range(ROUNDS)))


def _lines(path: Path, span: Any) -> Any:
    """The lines a worker owns in ``span`` of ``path`` (the export's own byte-range reader)."""
    from batchrecs.export.chunks import owned_lines
    from batchrecs.formats.lines import iter_file

    def read_from(offset: int) -> Any:
        with path.open("rb") as file:
            file.seek(offset)
            yield from iter_file(file)

    return (line for _, line in owned_lines(read_from, span))


def _span(path: Path) -> Any:
    from batchrecs.export.chunks import ByteRange

    return ByteRange(0, path.stat().st_size)


def naive(path: Path, span: Any, limit: int, table: Any) -> dict[str, float]:
    """The common sample path: ``Table.batch_writer().put_item`` with Python values."""

    def run() -> int:
        count = 0
        with table.batch_writer() as writer:
            for line in _lines(path, span):
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
                if count >= limit:
                    break
        return count

    count, wall, cpu = _timed(run)
    return {"items": count, "seconds": wall, "cpu_seconds": cpu}


class LocalFile:
    """The object store a worker reads its chunk from, over a local .out file (``iter_range`` as S3's
    ranged GET); error reports, if any, are kept in memory."""

    def __init__(self, path: Path) -> None:
        from tests.fakes import FakeObjects

        self.path = path
        self.reports = FakeObjects()

    def iter_range(self, bucket: str, key: str, start: int, if_match: str) -> Any:
        from batchrecs.formats.lines import iter_file

        with self.path.open("rb") as file:
            file.seek(start)
            yield from iter_file(file)

    def writer(self, bucket: str, key: str, content_type: str) -> Any:
        return self.reports.writer(bucket, key, content_type)


def _first_lines(path: Path, span: Any, lines: int) -> Any:
    """The part of ``span`` that owns only its first ``lines`` lines."""
    from batchrecs.export.chunks import ByteRange, owned_lines

    file = LocalFile(path)
    for index, (offset, _) in enumerate(owned_lines(lambda at: file.iter_range("", "", at, ""), span)):
        if index == lines:
            return ByteRange(span.start, offset)
    return span


def export_path(
    path: Path,
    span: Any = None,
    limit: int | None = None,
    writer: Any = None,
    threads: int = 4,
) -> dict[str, float]:
    """What an export worker does with one chunk message, by the shipped code: ``ChunkExporter.handle``
    reads the chunk's lines, parses them and hands them to the DynamoDB destination (records -> fast
    writer), then counts the chunk on its job. Only the AWS adapters around it are local: the .out is a
    local file, the jobs table an in-memory one (``tests.fakes``), and BatchWriteItem goes to the
    bench's endpoint."""
    from batchrecs.aws.dynamodb_batches import SignedBatchWriter
    from batchrecs.export.worker import ChunkExporter
    from batchrecs.formats.events import ChunkMessage
    from batchrecs.jobs.model import EXPORTING, Job
    from batchrecs.routes.config import parse_routes
    from batchrecs.sinks.dynamodb.destination import INITIAL_WRITES_PER_SECOND, DynamoDBRecords
    from batchrecs.sinks.dynamodb.writer import AdaptiveRate, ShardedRecordSink

    from tests.fakes import FakeEvents, FakeJobStore, FakeQueue

    rate = AdaptiveRate(initial=INITIAL_WRITES_PER_SECOND)  # as the workers start (sinks/dynamodb)
    sink = ShardedRecordSink(TABLE, writer or SignedBatchWriter(), threads=threads, rate=rate)
    span = span or _span(path)
    if limit is not None:
        span = _first_lines(path, span, limit)
    now = "2026-11-23T00:00:00Z"  # two chunks planned: counting this one does not finish the job
    job = Job(
        jobName="bench", route="home", kind="user-personalization", status=EXPORTING, sourceBucket="bench",
        sourceKey="input/home/u.jsonl", sourceIdentity="bench", createdAt=now, updatedAt=now, chunksTotal=2,
    )  # fmt: skip
    message = ChunkMessage(
        jobName="bench", chunkId="0", bucket="bench", key=path.name, etag="", start=span.start,
        end=span.end, generatedAt=now,
    )  # fmt: skip
    worker = ChunkExporter(
        routes=parse_routes(BENCH_ROUTE, {}),
        jobs=FakeJobStore(job),
        objects=LocalFile(path),  # type: ignore[arg-type]
        events=FakeEvents(),
        destination_for=lambda route: DynamoDBRecords(lambda route: sink),
        max_receives=3,
        queue=FakeQueue(),
    )
    counts, wall, cpu = _timed(lambda: worker.handle(message))
    if counts is None or counts.failed:
        raise RuntimeError(f"the bench chunk was not exported cleanly: {counts}")
    return {
        "items": counts.lines,
        "seconds": wall,
        "cpu_seconds": cpu,
        "throttles": sink.throttles,
        "retries": sink.retries,
        "written": sink.written + sink.superseded,
    }


def paired_throughput(path: Path, endpoint: Endpoint) -> dict[str, Any]:
    """Naive and batchrecs on the same slices of the file, one right after the other.

    This machine's speed swings several-fold within seconds (shared host), so one long run of each
    would compare different machines. Batchrecs exports the first SLICE_LINES lines of each slice
    and the naive path then a 1/NAIVE_SHARE of that; the speedup is the median of the per-slice ratios of items
    per CPU-second (the client process only: the endpoint runs in its own process).
    """
    import statistics

    import boto3
    from batchrecs.aws.dynamodb_batches import SignedBatchWriter
    from batchrecs.export.chunks import plan_ranges

    _environment(endpoint.url)
    table = boto3.resource("dynamodb").Table(TABLE)
    writer = SignedBatchWriter()
    size = path.stat().st_size
    pairs = []
    for span in plan_ranges(size, -(-size // SLICES)):
        fast = export_path(path, span, limit=SLICE_LINES, writer=writer)
        slow = naive(path, span, max(1, int(fast["items"] // NAIVE_SHARE)), table)
        pairs.append((slow, fast))

    def totals(runs: list[dict[str, float]]) -> dict[str, float]:
        items = sum(run["items"] for run in runs)
        wall = sum(run["seconds"] for run in runs)
        cpu = sum(run["cpu_seconds"] for run in runs)
        return {"items": items, "items_per_s": items / wall, "items_per_cpu_s": items / cpu}

    def per_cpu(run: dict[str, float]) -> float:
        return run["items"] / run["cpu_seconds"]

    ratios = [per_cpu(fast) / per_cpu(slow) for slow, fast in pairs]
    wall_ratios = [
        (fast["items"] / fast["seconds"]) / (slow["items"] / slow["seconds"]) for slow, fast in pairs
    ]
    return {
        "naive": totals([slow for slow, _ in pairs]),
        "batchrecs": {
            **totals([fast for _, fast in pairs]),
            "best_slice_items_per_cpu_s": max(per_cpu(fast) for _, fast in pairs),
        },
        "slices": len(pairs),
        "speedup_per_slice": {
            "min": min(ratios),
            "median": statistics.median(ratios),
            "max": max(ratios),
        },
        "speedup_vs_naive": statistics.median(ratios),
        "speedup_vs_naive_wall": statistics.median(wall_ratios),
        "items_lost": sum(fast["items"] - fast["written"] for _, fast in pairs),
    }


def with_latency(path: Path) -> dict[str, Any]:
    """Wall rates against an endpoint that answers after LATENCY_S: the writer's threads overlap the
    round trips, the naive path waits for each of its 25-item calls."""
    import boto3

    endpoint = Endpoint(latency=LATENCY_S)
    try:
        _environment(endpoint.url)
        fast = export_path(path, limit=LATENCY_ITEMS)
        slow = naive(path, _span(path), LATENCY_ITEMS // NAIVE_SHARE, boto3.resource("dynamodb").Table(TABLE))
    finally:
        endpoint.stop()
    fast_rate, slow_rate = fast["items"] / fast["seconds"], slow["items"] / slow["seconds"]
    return {
        "latency_ms": LATENCY_S * 1000,
        "naive_items_per_s": round(slow_rate),
        "batchrecs_items_per_s": round(fast_rate),
        "speedup_wall": round(fast_rate / slow_rate, 2),
    }


def peak_rss(size_mb: int, workdir: Path, endpoint: Endpoint) -> dict[str, float]:
    """Run the export path over a file of ``size_mb`` in a fresh process; report its peak RSS."""
    path = workdir / f"rss-{size_mb}.out"
    probe = workdir / "probe.out"
    line_bytes = write_out_file(probe, 10, per_line=RSS_ITEMS_PER_LINE) / 10
    write_out_file(path, int(size_mb * (1 << 20) / line_bytes), seed=size_mb, per_line=RSS_ITEMS_PER_LINE)
    code = (
        "import json, sys; sys.path[:0] = sys.argv[3:]; from run import export_path, _environment;"
        "from rss import peak_rss_mb; _environment(sys.argv[2]);"
        "r = export_path(__import__('pathlib').Path(sys.argv[1]));"
        "print(json.dumps({**r, 'peak_rss_mb': peak_rss_mb()}))"
    )
    out = subprocess.run(  # noqa: S603 - our own benchmark
        [sys.executable, "-c", code, str(path), endpoint.url, str(HERE)],
        capture_output=True,
        text=True,
        check=True,
    )
    path.unlink()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "file_mb": size_mb,
        "lines": result["items"],
        "items_per_line": RSS_ITEMS_PER_LINE,
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "seconds": round(result["seconds"], 1),
    }


def main() -> int:
    import tempfile

    from batchrecs.sinks.dynamodb.destination import INITIAL_WRITES_PER_SECOND

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
        "writer": {"threads": 4, "initial_writes_per_s": INITIAL_WRITES_PER_SECOND},
    }
    results["parse_only_lines_per_s"] = round(parse_only(out_file))
    instant = Endpoint()
    try:
        paired = paired_throughput(out_file, instant)
        print(f"paired slices done: {paired['speedup_vs_naive']:.1f}x per core", file=sys.stderr)
        results.update(_rounded(paired))
        results["peak_rss"] = [peak_rss(size_mb, workdir, instant) for size_mb in RSS_MB]
        results["peak_rss_mb"] = max(entry["peak_rss_mb"] for entry in results["peak_rss"])
    finally:
        instant.stop()
    # The cap must bind: below what this client reaches uncapped here, at most a fresh table's 4,000/s.
    cap = CAP or int(min(4000, paired["batchrecs"]["items_per_s"] * 0.5) // 100 * 100)
    capped = Endpoint(cap=cap)
    try:
        _environment(capped.url)
        run = export_path(out_file, limit=int(cap * CAPPED_SECONDS))  # at the cap, CAPPED_SECONDS
        stats = capped.stats()
    finally:
        capped.stop()
    results["capped"] = {
        "cap_items_per_s": cap,
        "items_per_s": run["items"] / run["seconds"],
        **_rounded(run),
        "stored_unique": stats["unique"],
        "throttled_requests_answered": stats["throttled"],
    }
    results["capped_fraction_of_cap"] = round(run["items"] / run["seconds"] / cap, 3)
    results["items_lost"] = int(run["items"]) - stats["unique"]
    results["latency"] = with_latency(out_file)
    per_worker = paired["batchrecs"]["items_per_cpu_s"]  # a worker is CPU-bound (1 vCPU at 1,769 MB)
    users = 10_000_000
    total_bytes = size / LINES * users
    chunks = int(-(-total_bytes // CHUNK_BYTES))
    lines_per_chunk = users / chunks
    results["fanout_10m_users"] = {
        "output_gb": round(total_bytes / 1e9, 2),
        "chunk_mb": CHUNK_BYTES >> 20,
        "chunks": chunks,
        "worker_items_per_s": round(per_worker),
        "seconds_per_chunk_at_measured_rate": round(lines_per_chunk / per_worker, 1),
        "wall_minutes": {
            f"{capacity} writes/s, {workers} workers": round(
                users / min(capacity, workers * per_worker) / 60, 1
            )
            for capacity, workers in CAPACITIES
        },
        # each worker writes at most its share of the table's capacity (maxWritesPerSecond / workers)
        "seconds_per_chunk": {
            f"{capacity} writes/s, {workers} workers": round(
                lines_per_chunk / min(capacity / workers, per_worker), 1
            )
            for capacity, workers in CAPACITIES
        },
    }
    import submit  # bench/submit.py

    speed = submit.speed()
    print(f"submit: {speed['submit_lines_per_cpu_s']:,} lines/CPU-s", file=sys.stderr)
    results["submit"] = {**speed, "peak_rss": submit.rss_rows()}
    results["submit_lines_per_cpu_s"] = speed["submit_lines_per_cpu_s"]
    results["submit_peak_rss_mb"] = {
        str(row["ids"]): row["peak_rss_mb"] for row in results["submit"]["peak_rss"]
    }
    import ses  # bench/ses.py

    results["ses_merge"] = ses.rss_rows()
    results["ses_peak_rss_mb"] = {str(row["contacts"]): row["peak_rss_mb"] for row in results["ses_merge"]}
    import cost  # bench/cost.py

    measured = {
        "submit_lines_per_cpu_s": speed["submit_lines_per_cpu_s"],
        "worker_items_per_cpu_s": per_worker,
    }
    results["cost_per_million_users"] = cost.cost_per_million(measured, size / LINES)
    import local_start  # bench/local_start.py

    results["local_start"] = local_start.measure()
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _rounded(value)
        if isinstance(value, dict)
        else round(value, 2)
        if isinstance(value, float)
        else value
        for key, value in values.items()
    }


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
        (
            "   speedup vs naive",
            f"{r['speedup_vs_naive']}x per core (median of {r['slices']} paired slices, "
            f"{r['speedup_per_slice']['min']}-{r['speedup_per_slice']['max']}), "
            f"{r['speedup_vs_naive_wall']}x wall",
        ),
        (
            f"   {r['latency']['latency_ms']:.0f} ms latency",
            f"naive {r['latency']['naive_items_per_s']:,} items/s, batchrecs "
            f"{r['latency']['batchrecs_items_per_s']:,} items/s ({r['latency']['speedup_wall']}x wall)",
        ),
        (
            "4. capped endpoint",
            f"{r['capped']['items_per_s']:,.0f} of {r['capped']['cap_items_per_s']:,} items/s = "
            f"{r['capped_fraction_of_cap']:.0%}, {r['items_lost']} lost, {r['capped']['throttles']:.0f} throttles",
        ),
        ("5. peak RSS", ", ".join(f"{e['file_mb']} MB file: {e['peak_rss_mb']} MB" for e in r["peak_rss"])),
        (
            "6. 10M users",
            f"{r['fanout_10m_users']['output_gb']} GB, {r['fanout_10m_users']['chunks']} chunks of "
            f"{r['fanout_10m_users']['chunk_mb']} MB, {r['fanout_10m_users']['seconds_per_chunk_at_measured_rate']} s each "
            f"at {r['fanout_10m_users']['worker_items_per_s']:,} items/s per worker",
        ),
    ]
    plan = r["fanout_10m_users"]
    rows += [
        ("   wall time", f"{label}: {minutes} min ({plan['seconds_per_chunk'][label]:.0f} s per chunk)")
        for label, minutes in plan["wall_minutes"].items()
    ]
    submit = r["submit"]
    rows.append(
        (
            "7. submit validation",
            f"{submit['submit_lines_per_cpu_s']:,} lines/CPU-s ({submit['ratio_to_parse_only']}x orjson "
            f"parse-only, {submit['parse_only_lines_per_cpu_s']:,}/CPU-s)",
        )
    )
    rows += [
        (
            "   submit peak RSS",
            f"{row['ids']:,} unique ids ({row['input_mb']} MB): {row['peak_rss_mb']} MB, {row['cpu_s']} CPU-s",
        )
        for row in submit["peak_rss"]
    ]
    rows += [
        (
            "   SES merge peak RSS",
            f"{row['contacts']:,} contacts: {row['peak_rss_mb']} MB, {row['merge_cpu_s']} CPU-s, "
            f"{row['import_files']} import files, {row['opt_outs_kept']:,} opt-outs kept",
        )
        for row in r["ses_merge"]
    ]
    costs = r["cost_per_million_users"]
    for per_line in (25, 100, 500):
        row = costs[f"dynamodb_numResults_{per_line}"]
        sizes = row["record_bytes"]
        rows.append(
            (
                "8. cost per 1M users" if per_line == 25 else "",
                f"DynamoDB, numResults {per_line}: ${row['total_usd']} (floor ${row['floor_usd']}, "
                f"+{row['over_floor']:.1%}); records {sizes['min']}-{sizes['max']} B, "
                f"{sizes['wru_per_record']} WRU each",
            )
        )
    ses = costs["ses"]
    rows.append(("", f"SES: ${ses['total_usd']} (floor ${ses['floor_usd']}: the directory lookups)"))
    import local_start  # bench/local_start.py

    rows += local_start.rows(r["local_start"])
    print(f"\nbatchrecs bench on {r['machine']['cores']} cores, Python {r['machine']['python']}")
    for name, value in rows:
        print(f"  {name:<30} {value}")


if __name__ == "__main__":
    sys.exit(main())
