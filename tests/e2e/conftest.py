"""End to end: the ``batchrecs`` command run as a user runs it, on the embedded local cloud."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

SAMPLES = ROOT / "samples"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        lines = self.stdout.strip().splitlines()
        assert len(lines) == 1, (
            f"expected one JSON line on stdout, got: {self.stdout!r}\n{self.stderr[-4000:]}"
        )
        return json.loads(lines[0])


def batchrecs(*args: str | Path, timeout: float = 240) -> Result:
    completed = subprocess.run(  # noqa: S603 - our own command with test arguments
        [sys.executable, "-m", "batchrecs_local", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]
