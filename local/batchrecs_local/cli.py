"""``batchrecs``: operate a stack (on AWS or ``local up``), validate files offline, run the local cloud.

    batchrecs demo
    batchrecs local up [--json] [--port N]
    batchrecs local run FILE --route NAME [--routes ROUTES.yaml] [--dump DIR] [--json]
    batchrecs local export OUT_FILE --route NAME [--routes ROUTES.yaml] [--dump DIR] [--json]
    batchrecs validate FILE (--route NAME | --kind KIND) [--routes ROUTES.yaml] [--json]
    batchrecs jobs [--route R] [--status S] [--limit N]        (a deployed stack, or local up: --stack,
    batchrecs show JOB | s3://BUCKET/input/ROUTE/FILE           --endpoint-url; see "Operate" in README)
    batchrecs submit FILE --route NAME [--wait] [--timeout S]
    batchrecs replay-export JOB [--wait]
    batchrecs redrive
    batchrecs redrive-chunks --dlq-url URL --queue-url URL
    batchrecs redrive-events --queue-url URL
    batchrecs erase --user ID [--email A]
    batchrecs chaos [--short]

The functions' own logs go to stderr, so stdout holds only what a command prints (one JSON object
with ``--json``). Every command exits with the same codes (``EXIT_CODES``), and says why in one line:
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import dataclasses
import gc
import importlib.metadata
import importlib.util
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from batchrecs.errors import BatchrecsError, ConfigError

from batchrecs_local.progress import JobProgress
from batchrecs_local.project import default_routes

EXIT_CODES = {
    0: "ok: the file is valid, the job was EXPORTED, the command did what it was asked",
    1: "invalid or failed: the file is invalid, the job was REJECTED, CREATE FAILED or EXPORT_FAILED",
    2: "usage or configuration: bad arguments, no such file, a bad routes file, an unknown route",
    3: "timed out: the job did not end within --timeout (it may still end)",
    4: "unexpected error: a bug or a local cloud that failed (--verbose shows the traceback)",
}
OFFLINE_ARN = "arn:aws:personalize:us-east-1:000000000000:solution/offline-validation/1"
# Seconds an emulated batch job runs: short, so a small file's run is over in under two seconds; the
# states are the service's all the same (the monitor ticks whenever an emulated job changes, so it sees each).
JOB_SECONDS = 0.2  # an emulated batch job's run time (half of it again pending)
TICK_SECONDS = 0.5  # the monitor's schedule; it also runs whenever an emulated job changes
LOCAL_COMMANDS = ("demo", "local", "chaos")  # these run the embedded local cloud: the ``local`` extra
LOCAL_PACKAGES = ("moto", "werkzeug", "samtranslator", "numpy")
START_COMMANDS = ("demo", "local")  # these start one local cloud each (chaos starts one per scenario)


def entry() -> None:
    """The ``batchrecs`` console script: ``main``, then the exit handlers, then the process ends without
    tearing the interpreter down. After a local cloud ran, that teardown (freeing moto's state, the
    service models and the recommender's arrays) took 0.9 s: longer than a small file's whole run."""
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    out = sys.stdout
    log: TextIO | None = None
    missing = [name for name in LOCAL_PACKAGES if importlib.util.find_spec(name) is None]
    if args.command in LOCAL_COMMANDS and missing:
        return _fail(
            2,
            f"{args.command} runs the local cloud, which needs the local extra"
            f" (missing: {', '.join(missing)}): pip install 'batchrecs[local]'",
        )
    collecting = gc.isenabled()
    if args.command in START_COMMANDS:
        gc.disable()  # until the local cloud has started: see _started
    if args.command in LOCAL_COMMANDS:
        # The functions log to stdout, as on Lambda; keep that out of what this command prints.
        if args.verbose:
            sys.stdout = sys.stderr
        else:
            log_path = Path(tempfile.gettempdir()) / f"batchrecs-local-{os.getpid()}.log"
            log = sys.stdout = log_path.open("w", encoding="utf-8")
            print(f"function logs: {log_path} (--verbose shows them here)", file=sys.stderr)
    try:
        return int(args.run(args, out))
    except (UsageError, BatchrecsError) as exc:  # ConfigError, UnknownRouteError: what the user gave
        return _fail(2, exc)
    except TimeoutError as exc:
        return _fail(3, exc)
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback; --verbose shows it
        if getattr(args, "verbose", False):
            traceback.print_exc()
        return _fail(4, f"unexpected error: {type(exc).__name__}: {exc}")
    finally:
        sys.stdout = out
        if log is not None:
            log.close()
        if collecting:  # as it was (main also runs in a test's process), whether or not the cloud started
            gc.enable()
        else:
            gc.disable()


class UsageError(Exception):
    """Something the user gave cannot be used (exit code 2)."""


def _fail(code: int, reason: object) -> int:
    message = "; ".join(line.strip() for line in str(reason).splitlines() if line.strip())
    print(f"batchrecs: {message}", file=sys.stderr)
    return code


def _routes(args: argparse.Namespace) -> Any:
    """The routes file a command will use, checked before anything starts (with ``--route``, that
    route too): a bad file or an unknown route is exit code 2 for every command, at once."""
    from batchrecs.routes.config import load_routes

    given = getattr(args, "routes", None)
    routes = load_routes(given or default_routes(getattr(args, "template", None)), _OfflineEnviron())
    if getattr(args, "route", None):
        routes.get(args.route)
    return routes


def _stack_routes(args: argparse.Namespace, stack: Any) -> Any:
    """The routes file as the stack's functions read it: its model variables come from the stack, so a
    route whose model parameter was left empty is off here too (``disabled``, with why)."""
    from batchrecs.routes.config import load_routes

    environ = _OfflineEnviron()
    environ.update(stack.model_variables())
    return load_routes(getattr(args, "routes", None) or default_routes(None), environ)


def _readable(file: Path) -> Path:
    if file.is_dir():
        raise UsageError(f"{file} is a folder, not a file")
    if not file.is_file():
        raise UsageError(f"no such file: {file}")
    return file


def _version() -> str:
    try:
        return importlib.metadata.version("batchrecs")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed: pip install .)"


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="batchrecs",
        description=__doc__.split("\n\n")[0],
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"batchrecs {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the sample routes end to end on the local cloud")
    demo.add_argument("--verbose", action="store_true", help="show the functions' logs")
    _template_option(demo)
    demo.set_defaults(run=_demo)

    local = commands.add_parser("local", help="the embedded local cloud").add_subparsers(
        dest="local_command", required=True
    )
    up = local.add_parser("up", help="run the local cloud in the foreground with the pipeline live")
    up.add_argument("--port", type=int, default=4566)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument(
        "--schedule-scale",
        type=float,
        default=3600.0,
        help="routes' schedules fire on a clock this many times faster than real time (0: never)",
    )
    _common(up)
    up.set_defaults(run=_up)
    run = local.add_parser("run", help="fresh local cloud: upload FILE to a route and drive it to the end")
    run.add_argument("file", type=Path)
    _route_options(run)
    run.set_defaults(run=_run)
    export = local.add_parser("export", help="fresh local cloud: export OUT_FILE as a finished job's output")
    export.add_argument("out_file", type=Path)
    _route_options(export)
    export.set_defaults(run=_export)
    tick = local.add_parser(
        "tick", help="fresh local cloud: fire a scheduled route's schedule now and drive its job to the end"
    )
    tick.add_argument("route_name", metavar="ROUTE")
    tick.add_argument("--input", type=Path, help="put this file as the route's standingInput first")
    tick.add_argument("--dump", type=Path, help="write records, jobs and reports to this folder")
    tick.add_argument("--timeout", type=float, default=300)
    _common(tick)
    tick.set_defaults(run=_tick)

    jobs = commands.add_parser("jobs", help="a stack's recent jobs by route and status, newest first")
    jobs.add_argument("--route", action="append", help="this route's jobs (again for more; default: all)")
    jobs.add_argument("--status", help="only jobs in this status (e.g. EXPORTING, REJECTED)")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument(
        "--routes", type=Path, help="routes file naming the routes (default: config/routes.yaml)"
    )
    _stack_options(jobs)
    jobs.set_defaults(run=_jobs)
    show = commands.add_parser("show", help="one job: status history, counts, chunks, reports, failure")
    show.add_argument("job", metavar="JOB | s3://BUCKET/input/ROUTE/FILE")
    _stack_options(show)
    show.set_defaults(run=_show)
    submit = commands.add_parser("submit", help="upload FILE to a route of the stack (and follow its job)")
    submit.add_argument("file", type=Path)
    submit.add_argument("--route", required=True)
    submit.add_argument(
        "--wait", action="store_true", help="follow the job to its end (exit code by outcome)"
    )
    submit.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (then exit 3)")
    _stack_options(submit)
    submit.set_defaults(run=_submit)
    replay = commands.add_parser(
        "replay-export", help="export a finished job again: the same records, its counts not doubled"
    )
    replay.add_argument("job", metavar="JOB | s3://BUCKET/input/ROUTE/FILE")
    replay.add_argument("--wait", action="store_true", help="follow the export to its end")
    replay.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits (then exit 3)")
    _stack_options(replay)
    replay.set_defaults(run=_replay_export)
    erase = commands.add_parser(
        "erase", help="delete one user's records (every route) and SES contact from the stack"
    )
    erase.add_argument("--user", required=True, help="the user id")
    erase.add_argument("--email", help="their address (default: the stack's user directory's)")
    _stack_options(erase)
    erase.set_defaults(run=_erase)
    both = commands.add_parser(
        "redrive", help="the stack's chunks dead-letter queue and failed-events queue, re-driven"
    )
    _stack_options(both)
    both.set_defaults(run=_redrive_stack)

    redrive = commands.add_parser(
        "redrive-chunks", help="move dead-lettered export chunks back to the chunks queue (AWS or local)"
    )
    redrive.add_argument("--dlq-url", required=True, help="the stack's ChunksDeadLetterQueueUrl output")
    redrive.add_argument("--queue-url", required=True, help="the stack's ChunksQueueUrl output")
    redrive.add_argument("--json", action="store_true")
    redrive.set_defaults(run=_redrive)

    events = commands.add_parser(
        "redrive-events",
        help="run again what failed after its retries (the failed-events queue; AWS or local)",
    )
    events.add_argument("--queue-url", required=True, help="the stack's FailedEventsQueueUrl output")
    events.add_argument("--json", action="store_true")
    events.set_defaults(run=_redrive_events)

    chaos = commands.add_parser(
        "chaos", help="run the pipeline locally under injected faults; print the table"
    )
    chaos.add_argument("--short", action="store_true", help="the scenarios CI runs")
    chaos.add_argument("--verbose", action="store_true", help="show the functions' logs")
    chaos.set_defaults(run=_chaos)

    validate = commands.add_parser("validate", help="validate a file offline, as the submit function would")
    validate.add_argument("file", type=Path)
    target = validate.add_mutually_exclusive_group(required=True)
    target.add_argument("--route")
    target.add_argument("--kind")
    validate.add_argument(
        "--routes", type=Path, help="routes file (default: config/routes.yaml beside template.yaml)"
    )
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(run=_validate)
    return parser


def _stack_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", help="the stack's name (default: $BATCHRECS_STACK, samconfig.toml's, or batchrecs)"
    )
    parser.add_argument(
        "--endpoint-url",
        help="another endpoint for every AWS call, e.g. batchrecs local up's (or $AWS_ENDPOINT_URL)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def _stack(args: argparse.Namespace) -> Any:
    from batchrecs.operate.stack import find_stack, stack_name

    if args.endpoint_url:  # every client of this command, the adapters' own included
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    return find_stack(stack_name(args.stack))


def _template_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--template",
        type=Path,
        help="the project's template.yaml (default: the working directory's, or the nearest above it)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    _template_option(parser)
    parser.add_argument("--routes", type=Path, help="routes file (default: config/routes.yaml)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="show the functions' logs")
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=JOB_SECONDS,
        help="emulated batch job run time (and half of it pending)",
    )
    parser.add_argument(
        "--chunk-bytes", type=int, default=1 << 20, help="export chunk size (the template's ExportChunkBytes)"
    )
    parser.add_argument(
        "--kms",
        action="store_true",
        help="deploy with DataKmsKeyArn: a local KMS key encrypts bucket and jobs",
    )


def _route_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--route", required=True)
    parser.add_argument("--dump", type=Path, help="write records, jobs and reports to this folder")
    parser.add_argument("--timeout", type=float, default=300)
    _common(parser)


@contextlib.contextmanager
def _started(options: Any) -> Iterator[Any]:
    """The command's local cloud, started; the garbage collector runs again from then on, without passing
    over what the start made.

    ``main`` turns the collector off before the command imports anything. Importing the local cloud and
    starting it make about 130,000 objects that live as long as the command, and almost no garbage: the
    collector's full passes over them (four in a local run, finding 0-30 objects each) took 0.2-0.3 s of
    a 2 s local run. ``gc.freeze`` keeps them out of every later pass.
    """
    from batchrecs_local.session import LocalCloud

    with LocalCloud(options) as cloud:
        gc.freeze()
        gc.enable()
        try:
            yield cloud
        finally:
            gc.unfreeze()  # in the collector's care again once the cloud is gone


def _options(args: argparse.Namespace, host: str = "127.0.0.1", port: int = 0) -> Any:
    from batchrecs_local.personalize.emulator import Timings
    from batchrecs_local.session import Options

    job_seconds = getattr(args, "job_seconds", JOB_SECONDS)
    return Options(
        host=host,
        port=port,
        routes_file=getattr(args, "routes", None),
        timings=Timings(pending=job_seconds / 2, running=job_seconds),
        tick_seconds=TICK_SECONDS,
        log_level="INFO" if args.verbose else "WARNING",
        chunk_bytes=getattr(args, "chunk_bytes", 1 << 20),
        kms=getattr(args, "kms", False),
        template=getattr(args, "template", None),
    )


# ---------------------------------------------------------------------------------------- validate


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs.formats.lines import iter_file
    from batchrecs.routes.config import JobKind
    from batchrecs.submit.validation import validate_for_route, validate_upload, validate_upload_size

    route = None
    if args.route:
        route = _routes(args).get(args.route)
        kind, on_invalid = route.kind, route.onInvalidLines
    else:
        try:
            kind, on_invalid = JobKind(args.kind), "reject"
        except ValueError:
            raise UsageError(f"no job kind {args.kind!r} ({', '.join(JobKind)})") from None
    size = _readable(args.file).stat().st_size
    result = validate_upload_size(size, kind, on_invalid)  # what submit checks first
    if result is None:
        with args.file.open("rb") as file:  # as submit checks it
            if route is not None:
                result = validate_for_route(iter_file(file), args.file.name, route)
            else:
                result = validate_upload(iter_file(file), args.file.name, kind, on_invalid)
    report = result.report(source=str(args.file), route=args.route)
    if args.json:
        print(json.dumps(report), file=out)
    else:
        totals = result.totals
        verdict = "valid" if result.accepted else "INVALID"
        print(
            f"{args.file}: {verdict} for {kind.value} - {totals.lines} lines, {totals.valid} valid, "
            f"{totals.invalid} invalid, {totals.duplicates} duplicates, {totals.blank} blank",
            file=out,
        )
        if result.file_problem is not None:
            problem = result.file_problem
            print(f"  line {problem.line}: expected {problem.expected}, found {problem.found}", file=out)
        for problem in result.problems:
            print(f"  line {problem.line}: expected {problem.expected}, found {problem.found}", file=out)
        if result.problem_count > len(result.problems):
            print(f"  ... and {result.problem_count - len(result.problems)} more problems", file=out)
    return 0 if result.accepted else 1


class _OfflineEnviron(dict[str, str]):
    """The environment, with any missing ``${NAME}`` placeholder standing for a placeholder: a solution
    ARN for ``*_SOLUTION_ARN``, a solution version ARN for other ``*_ARN`` names, a resource name
    otherwise (contact list, user directory table)."""

    def __init__(self) -> None:
        import os

        super().__init__(os.environ)

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        if key.endswith("_SOLUTION_ARN"):  # a solution, not a version of it
            return OFFLINE_ARN.rsplit("/", 1)[0]
        return OFFLINE_ARN if key.endswith("_ARN") else "offline-placeholder"


# ---------------------------------------------------------------------------------------- local


def _jobs(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs.operate import jobs

    stack = _stack(args)
    configured = _stack_routes(args, stack)
    routes = args.route or list(configured.routes)
    for route, why in configured.disabled.items():
        print(f"route {route} is turned off in stack {stack.name}: {why}", file=sys.stderr)
    rows = [jobs.row(job) for job in jobs.recent(jobs.store(stack), routes, args.limit, args.status)]
    if args.json:
        print(json.dumps(rows), file=out)
        return 0
    if not rows:
        print(f"no jobs of {', '.join(routes)} in stack {stack.name}", file=out)
    for shown in rows:
        counts = {
            name: "-" if shown[name] is None else shown[name] for name in ("lines", "chunks", "records")
        }
        extra = f"  {shown['parts']} parts" if shown["parts"] else ""
        print(
            f"{shown['createdAt']}  {shown['route']:<14} {shown['status']:<18} {shown['jobName']}"
            f"  lines {counts['lines']}  chunks {counts['chunks']}  records {counts['records']}{extra}",
            file=out,
        )
    return 0


def _show(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs.operate import jobs

    store = jobs.store(_stack(args))
    job = jobs.find(store, args.job)
    detail = jobs.detail(job, jobs.parts_of(store, job))
    print(json.dumps(detail) if args.json else jobs.text(detail), file=out)
    return jobs.exit_code(job)


def _submit(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs.operate import jobs

    stack = _stack(args)
    _readable(args.file)
    try:
        off = _stack_routes(args, stack).disabled.get(args.route)
    except ConfigError:  # no project here to read the routes from: the submit function still says so
        off = None
    if off is not None:
        raise UsageError(f"route {args.route} is turned off in stack {stack.name}: {off}")
    key, before = jobs.submit(stack, args.file, args.route)
    print(f"uploaded s3://{stack.output('DataBucketName')}/{key}", file=sys.stderr)
    if not args.wait:
        if args.json:
            print(json.dumps({"bucket": stack.output("DataBucketName"), "key": key}), file=out)
        return 0

    store = jobs.store(stack)
    return _follow(args, out, store, jobs.new_upload(store, key, before))


def _follow(args: argparse.Namespace, out: TextIO, store: Any, lookup: Any) -> int:
    """Follow a job to its end with its progress on stderr; print it; exit by its outcome."""
    from batchrecs.operate import jobs

    with JobProgress(sys.stderr) as progress:
        job = jobs.follow(lookup, args.timeout, progress.show)
    detail = jobs.detail(job, jobs.parts_of(store, job))
    print(json.dumps(detail) if args.json else jobs.text(detail), file=out)
    return jobs.exit_code(job)


def _replay_export(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs.aws.events import EventBridgePublisher
    from batchrecs.clock import utc_now
    from batchrecs.operate import jobs
    from batchrecs.operate.replay import replay_export

    stack = _stack(args)
    store = jobs.store(stack)
    job = jobs.find(store, args.job)
    events = EventBridgePublisher(stack.output("EventBusName"), stack.client("events"))
    replayed = replay_export(job, store, events, utc_now)
    print(f"{replayed.jobName}: {replayed.status}, its export starts again", file=sys.stderr)
    if not args.wait:
        if args.json:
            print(json.dumps(jobs.row(replayed)), file=out)
        return 0
    return _follow(args, out, store, lambda: store.get(replayed.jobName))


def _redrive_stack(args: argparse.Namespace, out: TextIO) -> int:
    from dataclasses import asdict

    from batchrecs.aws.failed_events import redrive_failed_events
    from batchrecs.aws.sqs import redrive

    stack = _stack(args)
    moved = redrive(stack.output("ChunksDeadLetterQueueUrl"), stack.output("ChunksQueueUrl"))
    done = redrive_failed_events(stack.output("FailedEventsQueueUrl"))
    if args.json:
        print(json.dumps({"chunksMoved": moved, "failedEvents": asdict(done)}), file=out)
    else:
        print(f"moved {moved} dead-lettered chunks back to the chunks queue", file=out)
        _print_redriven(done, out, "failed events: ")
    return 1 if done.left else 0


def _print_redriven(done: Any, out: TextIO, prefix: str = "") -> None:
    print(
        f"{prefix}invoked {done.invoked} functions again, delivered {done.published} alerts again, dropped "
        f"{done.dropped_ticks} monitor ticks; {len(done.left)} left on the queue",
        file=out,
    )
    for reason in done.left:
        print(f"  {reason}", file=out)


def _redrive(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs.aws.sqs import redrive

    moved = redrive(args.dlq_url, args.queue_url)
    if args.json:
        print(json.dumps({"moved": moved}), file=out)
    else:
        print(f"moved {moved} chunk messages back to {args.queue_url}", file=out)
    return 0


def _redrive_events(args: argparse.Namespace, out: TextIO) -> int:
    from dataclasses import asdict

    from batchrecs.aws.failed_events import redrive_failed_events

    done = redrive_failed_events(args.queue_url)
    if args.json:
        print(json.dumps(asdict(done)), file=out)
    else:
        _print_redriven(done, out)
    return 1 if done.left else 0


def _erase(args: argparse.Namespace, out: TextIO) -> int:
    from dataclasses import asdict

    from batchrecs.aws.directory import DirectoryAddressBook
    from batchrecs.aws.erasure import erase_user
    from batchrecs.sinks.ses.settings import DirectoryLookup

    stack = _stack(args)
    dynamodb = stack.client("dynamodb")
    email = args.email
    if email is None:
        directory = DirectoryLookup(type="directory", table=stack.output("UserDirectoryTableName"))
        email = DirectoryAddressBook(directory, dynamodb).addresses([args.user]).get(args.user)
    erased = erase_user(
        args.user,
        stack.output("RecommendationsTableName"),
        email,
        stack.output("ContactListName") if email else None,
        dynamodb=dynamodb,
        ses=stack.client("sesv2"),
    )
    if args.json:
        print(json.dumps({"user": args.user, **asdict(erased), "addressKnown": email is not None}), file=out)
        return 0
    if erased.contact:
        contact = " and their SES contact"
    elif email:
        contact = "; their address has no SES contact"
    else:
        contact = "; no address for them in the user directory (give one with --email)"
    records = "1 record" if erased.records == 1 else f"{erased.records} records"
    print(f"deleted {records} of user {args.user}{contact}", file=out)
    return 0


def _run(args: argparse.Namespace, out: TextIO) -> int:
    return _drive(args, out, args.file, lambda cloud: cloud.upload(args.file, args.route))


def _tick(args: argparse.Namespace, out: TextIO) -> int:
    """Fresh local cloud: the monitor makes the route's schedule, which fires now (as EventBridge
    Scheduler would: the schedule's role invokes the submit function with the scheduled time)."""
    from batchrecs_local.runtime import wait_until

    route = _routes(args).routes.get(args.route_name)
    if route is None or route.schedule is None or route.standingInput is None:
        raise UsageError(f"route {args.route_name} has no schedule and standingInput in the routes file")
    if args.input is not None:
        _readable(args.input)
    with _started(_options(args)) as cloud:
        if args.input is not None:  # the standing input (not a job of its own: the schedule runs it)
            s3 = cloud.endpoint.client("s3")
            s3.put_object(Bucket=cloud.bucket, Key=route.standingInput, Body=args.input.read_bytes())
        name = wait_until(lambda: _fired(cloud, route.name), timeout=30)
        job = cloud.wait_for_job(name, args.timeout)
        if args.dump:
            cloud.dump(args.dump)
    return _summarise(job, args, out)


def _fired(cloud: Any, route: str) -> str | None:
    try:
        return str(cloud.fire_schedule(route))
    except LookupError:  # the monitor has not made the schedule yet
        return None


def _export(args: argparse.Namespace, out: TextIO) -> int:
    return _drive(args, out, args.out_file, lambda cloud: cloud.replay_export(args.out_file, args.route))


def _drive(args: argparse.Namespace, out: TextIO, file: Path, start: Any) -> int:
    """Fresh local cloud: start a job from ``file``, wait for its end state, dump, summarise."""
    _readable(file)
    _routes(args)
    with _started(_options(args)) as cloud:
        key = start(cloud)
        with JobProgress(sys.stderr) as progress:
            job = cloud.wait_for([key], args.timeout, on_poll=progress.show)[key]
        if args.dump:
            cloud.dump(args.dump)
    return _summarise(job, args, out)


def _summarise(job: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    summary = job_summary(job)
    if args.json:
        print(json.dumps(summary), file=out)
    else:
        for name, value in summary.items():
            print(f"{name:16} {value}", file=out)
    return 0 if summary["status"] == "EXPORTED" else 1


def job_summary(job: dict[str, Any]) -> dict[str, Any]:
    export = job.get("export") or {}
    validation = job.get("validation") or {}
    report = (
        job.get("reportKey")
        if job["status"] == "REJECTED"
        else export.get("errorsReport") or job.get("reportKey")
    )
    return {
        "route": job["route"],
        "job_name": job["jobName"],
        "status": job["status"],
        "lines": export.get("lines", validation.get("lines", 0)),
        "lines_written": export.get("linesWritten", export.get("recordsWritten", 0)),
        "records_written": export.get("recordsWritten", 0),
        "lines_failed": export.get("linesFailed", 0),
        "lines_superseded": export.get("linesSuperseded", 0),
        "lines_skipped": validation.get("invalid", 0) if job["status"] != "REJECTED" else 0,
        "duplicates": validation.get("duplicates", 0),
        "rejected": job["status"] == "REJECTED",
        "report": report,
        "chunks": export.get("chunks", 0),
        "failure_reason": job.get("failureReason"),
        **_contact_summary(export),
    }


def _contact_summary(export: dict[str, Any]) -> dict[str, Any]:
    """SES routes: what happened to the contacts (records_written counts the contacts staged)."""
    contacts = export.get("contacts")
    if contacts is None:
        return {}
    return {
        "users_without_address": export.get("usersWithoutAddress", 0),
        "contacts_imported": contacts.get("contactsImported", 0),
        "contacts_failed": contacts.get("contactsFailed", 0),
        "opted_out_kept": contacts.get("optedOut", 0),
        "import_jobs": contacts.get("importFiles", 0),
    }


def _status_lines(uploads: list[tuple[str, Path, str]]) -> Callable[[dict[str, Any]], None]:
    """A line on stderr per status change of any of ``uploads``' jobs, in columns as wide as their names."""
    routes = max(len(route) for route, _, _ in uploads)
    files = max(len(name) for _, _, name in uploads)

    def show(job: dict[str, Any]) -> None:
        file = job["sourceKey"].rsplit("/", 1)[-1]
        print(f"  {job['route']:<{routes}} {file:<{files}} {job['status']}", file=sys.stderr, flush=True)

    return show


def _up(args: argparse.Namespace, out: TextIO) -> int:
    _routes(args)  # a bad routes file stops here, not in every monitor tick
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with _started(_options(args, args.host, args.port)) as cloud:
        info = cloud.describe()
        if args.json:
            print(json.dumps(info), file=out, flush=True)
        else:
            for name, value in info.items():
                print(f"{name:22} {value}", file=out)
            print(
                f"\nDrop a file:  batchrecs submit users.jsonl --route home --wait --endpoint-url "
                f"{info['endpoint']}\n   or:        aws --endpoint-url {info['endpoint']} s3 cp users.jsonl "
                f"s3://{info['bucket']}/input/home/users.jsonl\nThen:        batchrecs jobs --endpoint-url "
                f"{info['endpoint']}\nCtrl-C stops.",
                file=out,
                flush=True,
            )
        runner = cloud.schedule_runner(args.schedule_scale).start() if args.schedule_scale > 0 else None
        # Wake up now and then: a signal delivered to another thread only runs its Python handler
        # when the main thread runs bytecode, never while it is blocked in a bare wait().
        seen: dict[str, int] = {}  # job -> the changes of its history already printed
        while not stop.wait(0.5):
            _print_changes(cloud, seen, out, args.json)
        if runner is not None:
            runner.stop()
    print("local cloud stopped", file=sys.stderr)
    return 0


def _print_changes(cloud: Any, seen: dict[str, int], out: TextIO, as_json: bool) -> None:
    """One line per job state change since the last call, from each job's history (so a status held for
    less than a poll is shown too); a JSON object each with --json."""
    changes = []
    for job in cloud.jobs():
        history = job.get("history") or [{"status": job["status"], "at": job["updatedAt"]}]
        for entry in history[seen.get(job["jobName"], 0) :]:
            reason = job.get("failureReason") if entry is history[-1] else None
            changes.append(
                {**entry, "route": job["route"], "jobName": job["jobName"], "failureReason": reason}
            )
        seen[job["jobName"]] = len(history)
    for change in sorted(changes, key=lambda change: change["at"]):
        if as_json:
            print(json.dumps({"jobChange": change}), file=out, flush=True)
            continue
        why = f"  {change['failureReason']}" if change["failureReason"] else ""
        line = f"{change['at']}  {change['route']:<14} {change['status']:<18} {change['jobName']}{why}"
        print(line, file=out, flush=True)


# ---------------------------------------------------------------------------------------- chaos


def _chaos(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs_local.chaos import run, table

    def progress(row: Any) -> None:
        print(f"  {row.fault} ({row.where}): {row.outcome}", file=sys.stderr, flush=True)

    rows = run(short=args.short, report=progress)
    print(table(rows), file=out)
    clean = all(row.clean for row in rows)
    print(
        f"\n{len(rows)} scenarios: "
        + ("0 lost, 0 duplicates, 0 stuck, 0 opt-outs overridden" if clean else "NOT CLEAN"),
        file=out,
    )
    return 0 if clean else 1


# ---------------------------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from batchrecs_local.session import samples_dir

    started = time.monotonic()
    samples = samples_dir(args.template)
    uploads = [
        ("home", samples / "home" / "users.jsonl", "users.jsonl"),
        ("related", samples / "related" / "items.csv", "items.csv"),
        ("themes", samples / "themes" / "items.jsonl", "items.jsonl"),
        ("ranking", samples / "ranking" / "users.json", "users.json"),
        ("segments", samples / "segments" / "items.jsonl", "items.jsonl"),
        ("segment-attributes", samples / "segment-attributes" / "queries.jsonl", "queries.jsonl"),
        ("weekly-email", samples / "weekly-email" / "users.jsonl", "users.jsonl"),
        ("home", samples / "rejected.jsonl", "rejected.jsonl"),
    ]
    print(
        "starting the local cloud (moto + Personalize emulator, stack from template.yaml)...", file=sys.stderr
    )
    routes = Path(tempfile.mkdtemp(prefix="batchrecs-demo-")) / "routes.yaml"
    # the shipped routes and the self-refreshing sample
    shipped = default_routes(args.template).read_text()
    routes.write_text(shipped + (samples / "weekly-fresh" / "route.yaml").read_text())
    with _started(dataclasses.replace(_options(args), routes_file=routes)) as cloud:
        print(
            f"local cloud up at {cloud.endpoint.url} in {time.monotonic() - started:.1f}s; uploading samples",
            file=sys.stderr,
        )
        # weekly-email's job is the longest (its export ends in SES imports): it is uploaded first, and
        # the table keeps the order above
        first = sorted(uploads, key=lambda upload: upload[0] != "weekly-email")
        uploaded = {(route, name): cloud.upload(path, route, name) for route, path, name in first}
        keys = [uploaded[route, name] for route, _, name in uploads]
        show = _status_lines(uploads)
        refresh: list[Future[Callable[[list[dict[str, Any]]], dict[str, Any]]]] = []

        def on_change(job: dict[str, Any]) -> None:
            show(job)
            # weekly-email runs the solution's newest version: once its job has one, the weekly-fresh
            # retrain runs beside the other jobs (and weekly-email still names version 1)
            if not refresh and job["route"] == "weekly-email" and job["status"] not in ("RECEIVED", "QUEUED"):
                refresh.append(background.submit(_scheduled_refresh, cloud, samples))

        with ThreadPoolExecutor(max_workers=1) as background:
            jobs = cloud.wait_for(keys, timeout=300, on_change=on_change)
            if not refresh:
                refresh.append(background.submit(_scheduled_refresh, cloud, samples))
            summarise = refresh[0].result()
        records = cloud.records()
        fresh = summarise(records)
        contacts = cloud.contacts()
        rejected_report = next(
            (
                json.loads(cloud.read(job["reportKey"]))
                for job in jobs.values()
                if job["status"] == "REJECTED"
            ),
            None,
        )
        iam, undeliverable = cloud.endpoint.iam, list(cloud.stack.undeliverable if cloud.stack else [])
    rows = [job_summary(jobs[key]) for key in keys]
    _print_table(rows, [key.rsplit("/", 1)[-1] for key in keys], out)
    print("\nExample records, as an application reads them from the recommendations table:", file=out)
    for route in ("home", "related", "themes", "ranking", "segments#", "segment-attributes#"):
        record = next((r for r in records if r["sk"] == route or r["sk"].startswith(route)), None)
        if record is not None:
            print("  " + json.dumps(_short(record)), file=out)
    weekly = next((row for row in rows if row["route"] == "weekly-email"), None)
    if weekly is not None and "contacts_imported" in weekly:
        print(
            f"\nweekly-email: {weekly['contacts_imported']} contacts subscribed to weekly-picks through "
            f"{weekly['import_jobs']} SES import job(s); {weekly['users_without_address']} users had no "
            f"address, {weekly['opted_out_kept']} had opted out and stay out:",
            file=out,
        )
        subscribed = next(
            (c for c in contacts if c["topicPreferences"].get("weekly-picks") == "OPT_IN"), None
        )
        kept = [
            c
            for c in contacts
            if c["unsubscribeAll"] or c["topicPreferences"].get("weekly-picks") == "OPT_OUT"
        ]
        for contact in ([subscribed] if subscribed else []) + kept:
            print("  " + json.dumps(_short_contact(contact)), file=out)
    print(
        f"\nScheduled run of weekly-fresh ({fresh['job']['jobName']}, {fresh['job']['status']}): fresh "
        f"interactions imported, {fresh['version']} trained, {fresh['records']} records name it; "
        f"user 1's top 10 in {fresh['genre']}: {fresh['before']:.0%} with version 1, {fresh['after']:.0%} "
        "with the new version",
        file=out,
    )
    if rejected_report is not None:
        print(f"\nRejected {rejected_report['source']}:", file=out)
        for problem in rejected_report["problems"]:
            print(
                f"  line {problem['line']}: expected {problem['expected']}, found {problem['found']}",
                file=out,
            )
    callers = iam.callers()
    functions = [caller for caller in callers if "." not in caller]  # services are named *.amazonaws.com
    print(
        f"\nPermissions: {iam.checked} calls by {len(functions)} functions and "
        f"{len(callers) - len(functions)} services checked against template.yaml's policies, "
        f"{len(iam.denials)} denied; {len(undeliverable)} alert rules or alarms that could not notify",
        file=out,
    )
    for problem in [denial.message() for denial in iam.denials[:5]] + undeliverable:
        print(f"  {problem}", file=out)
    expected = {"EXPORTED", "REJECTED"}
    ok = all(row["status"] in expected for row in rows) and rows[-1]["status"] == "REJECTED"
    ok = ok and fresh["job"]["status"] == "EXPORTED" and fresh["after"] > fresh["before"]
    ok = ok and not iam.denials and not undeliverable
    verdict = "demo finished" if ok else "demo FAILED"
    print(f"\n{verdict} in {time.monotonic() - started:.1f}s", file=out, flush=True)
    return 0 if ok else 1


def _scheduled_refresh(cloud: Any, samples: Path) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """The weekly-fresh sample: fresh interactions in datasets/ that make user 1 love the genre it cared
    least for, its standing input, then its schedule fired: import, retrain, batch job, export. Once the
    job has ended: how to summarise it from the records."""
    from batchrecs_local.runtime import wait_until

    emulator = cloud.endpoint.emulator
    dataset, first = emulator.training.dataset, emulator.solution_versions["aws-user-personalization"]
    genre, loved = dataset.new_taste("1")
    before, _ = emulator.training.version(first).recommender.recommend("1", 10)
    csv = "USER_ID,ITEM_ID,TIMESTAMP\n" + "".join(
        f"1,{item},{1_800_000_000 + n}\n" for n, item in enumerate(loved)
    )
    s3 = cloud.endpoint.client("s3")
    s3.put_object(Bucket=cloud.bucket, Key="datasets/weekly-fresh/interactions.csv", Body=csv.encode())
    standing = "input/weekly-fresh/all-users.jsonl"
    s3.put_object(
        Bucket=cloud.bucket, Key=standing, Body=(samples / "weekly-fresh" / "all-users.jsonl").read_bytes()
    )
    name = wait_until(lambda: _fired(cloud, "weekly-fresh"), timeout=30, interval=0.05)
    job = cloud.wait_for_job(name, timeout=300)

    def summary(all_records: list[dict[str, Any]]) -> dict[str, Any]:
        """What the run shows, from the records table read once for the whole demo."""
        records = [r for r in all_records if r["sk"] == "weekly-fresh" and r.get("jobName") == name]
        after: list[str] = next((r["items"] for r in records if r["pk"] == "1"), [])
        return {
            "job": job,
            "version": job.get("solutionVersionArn"),
            "records": sum(r.get("solutionVersionArn") == job.get("solutionVersionArn") for r in records),
            "genre": genre,
            "before": dataset.genre_share(before, genre),
            "after": dataset.genre_share(after, genre),
        }

    return summary


def _print_table(rows: list[dict[str, Any]], files: list[str], out: TextIO) -> None:
    route_width = max(5, *(len(row["route"]) for row in rows))
    file_width = max(4, *(len(file) for file in files))
    job_width = max(3, *(len(row["job_name"]) for row in rows))
    header = (
        f"{'route':<{route_width}} {'file':<{file_width}} {'job':<{job_width}} {'status':<10} "
        f"{'lines':>5} {'written':>7} {'failed':>6} {'skipped':>7} {'records':>7}"
    )
    print("\n" + header, file=out)
    print("-" * len(header), file=out)
    for row, file in zip(rows, files, strict=True):
        print(
            f"{row['route']:<{route_width}} {file:<{file_width}} {row['job_name']:<{job_width}} "
            f"{row['status']:<10} {row['lines']:>5} {row['lines_written']:>7} {row['lines_failed']:>6} "
            f"{row['lines_skipped']:>7} {row['records_written']:>7}",
            file=out,
        )


def _short_contact(contact: dict[str, Any]) -> dict[str, Any]:
    attributes = contact.get("attributes") or {}
    shown = {key: value for key, value in contact.items() if key != "attributes"}
    if attributes:
        shown["attributes"] = {**attributes, "items": attributes.get("items", [])[:3] + ["..."]}
        shown["attributes"].pop("scores", None)
    return shown


def _short(record: dict[str, Any]) -> dict[str, Any]:
    short = dict(record)
    if "items" not in record:  # a segment record: one user in one segment
        return short
    short["items"] = record["items"][:5] + (["..."] if len(record["items"]) > 5 else [])
    if "scores" in record:
        short["scores"] = record["scores"][:5] + (["..."] if len(record["scores"]) > 5 else [])
    return short


if __name__ == "__main__":
    raise SystemExit(main())
