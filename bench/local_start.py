"""The local cloud's start as a user meets it, for ``make bench``.

``batchrecs local run`` of the home sample (42 users) and ``batchrecs demo``, each a fresh process as a
user starts it: wall seconds, the median of a few runs after a first one (the first run of a checkout
writes the bytecode of the project's own modules and translates template.yaml once; later runs reuse
both: the translation is kept by hash under ``$BATCHRECS_CACHE_DIR``, here a fresh folder). Then where
one such run's time goes, from a fresh process that times its own steps: importing the package and the
local cloud, starting the cloud (moto, the emulators, the stack from template.yaml, the functions), the
job from upload to EXPORTED, stopping the cloud, and what is left (the interpreter's start and end).

Runs as a user's shell would: with ``PYTHONDONTWRITEBYTECODE`` unset (some CI images set it, which makes
every start compile the project's modules again: about 0.15 s more).

``python bench/local_start.py`` prints the same rows alone.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "home" / "users.jsonl"
COMMAND = [sys.executable, "-m", "batchrecs_local"]
# one local run, timed from inside: the same steps `batchrecs local run` takes, with its options
_STEPS = """
import gc, json, os, sys, time
started = time.perf_counter()
gc.disable()  # as cli.main does for a command that starts a local cloud, until it has started
from batchrecs_local.cli import JOB_SECONDS, TICK_SECONDS
from batchrecs_local.personalize.emulator import Timings
from batchrecs_local.session import LocalCloud, Options
from pathlib import Path
imported = time.perf_counter()
timings = Timings(pending=JOB_SECONDS / 2, running=JOB_SECONDS)  # as batchrecs local run sets them
cloud = LocalCloud(Options(timings=timings, tick_seconds=TICK_SECONDS, log_level="WARNING"))
cloud.__enter__()
gc.freeze(); gc.enable()  # as cli._started does
up = time.perf_counter()
cloud.wait_for([cloud.upload(Path(sys.argv[1]), "home")])
done = time.perf_counter()
cloud.__exit__(None, None, None)
stopped = time.perf_counter()
print(json.dumps({"import_s": imported - started, "start_s": up - imported, "job_s": done - up,
                  "stop_s": stopped - done, "measured_s": stopped - started}), flush=True)
os._exit(0)  # as the batchrecs command ends (cli.entry): no interpreter teardown
"""


def _environment(cache: str) -> dict[str, str]:
    environment = {**os.environ, "BATCHRECS_CACHE_DIR": cache}
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def _wall(argv: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, check=True, capture_output=True, env=environment)  # noqa: S603 - ours
    return time.perf_counter() - started


def measure(runs: int = 3) -> dict[str, Any]:
    environment = _environment(tempfile.mkdtemp(prefix="batchrecs-bench-cache-"))
    local_run = [*COMMAND, "local", "run", str(SAMPLE), "--route", "home", "--json"]
    first = _wall(local_run, environment)
    local_runs = [_wall(local_run, environment) for _ in range(runs)]
    demos = [_wall([*COMMAND, "demo"], environment) for _ in range(runs)]
    started = time.perf_counter()
    ran = subprocess.run(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", _STEPS, str(SAMPLE)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    )
    whole = time.perf_counter() - started
    steps = json.loads(ran.stdout.strip().splitlines()[-1])
    steps["interpreter_start_and_end_s"] = whole - steps.pop("measured_s")
    return {
        "first_local_run_s": round(first, 2),
        "local_run_s": round(statistics.median(local_runs), 2),
        "local_runs_s": [round(seconds, 2) for seconds in local_runs],
        "demo_s": round(statistics.median(demos), 2),
        "demos_s": [round(seconds, 2) for seconds in demos],
        "local_run_steps_s": {step: round(seconds, 2) for step, seconds in steps.items()},
    }


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    steps = result["local_run_steps_s"]
    return [
        (
            "9. local start",
            f"local run of 42 users: {result['local_run_s']} s (median of {result['local_runs_s']}, "
            f"the first {result['first_local_run_s']} s); demo: {result['demo_s']} s "
            f"(median of {result['demos_s']})",
        ),
        (
            "",
            f"one local run: import {steps['import_s']} s, cloud start {steps['start_s']} s, "
            f"job {steps['job_s']} s, stop {steps['stop_s']} s, "
            f"interpreter start and end {steps['interpreter_start_and_end_s']} s",
        ),
    ]


if __name__ == "__main__":
    for name, value in rows(measure()):
        print(f"  {name:<30} {value}")
