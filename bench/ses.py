"""The SES import step at size: the monitor's merge of an export's staged contacts with the contact list's
preferences, for 1M and 10M contacts, in a fresh process each (peak RSS is its own).

Synthetic data, generated as it is written to a local folder that stands in for the bucket: the
export's staged contacts (what the workers write, 10 recommended items each, in files of a million) and
the list's snapshot (what the monitor's scan writes): half the export's addresses are already in the
list, with a tenth of those unsubscribed from everything and a seventh opted out of the topic. The merge
is ``ContactImporter.merge`` as the monitor runs it; the opt-outs are checked in its import files.

Run alone: ``python bench/ses.py N`` prints one JSON object for N contacts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
from rss import peak_rss_mb  # noqa: E402 - bench/rss.py, next to this file

QUICK = 10 if os.environ.get("BENCH_QUICK") else 1  # BENCH_QUICK=1: a tenth of the sizes
CONTACTS = [int(n) // QUICK for n in os.environ.get("BENCH_SES_CONTACTS", "1000000,10000000").split(",")]
PER_FILE = 1_000_000
JOB = "weekly-email-users-bench"
TOPIC = "weekly-picks"


class _Writer:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self.bytes_written += len(data)

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        self._file.close()


class FolderObjects:
    """The bits of ``ObjectStore`` the merge uses, over a local folder (bucket = a subfolder)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def list_keys(self, bucket: str, prefix: str, suffix: str = "") -> list[str]:
        base = self._root / bucket
        return sorted(
            str(path.relative_to(base))
            for path in base.glob(prefix + "**/*")
            if path.is_file()
            and str(path.relative_to(base)).startswith(prefix)
            and path.name.endswith(suffix)
        )

    def iter_chunks(self, bucket: str, key: str, *_: Any) -> Iterator[bytes]:
        with (self._root / bucket / key).open("rb") as file:
            while chunk := file.read(1 << 20):
                yield chunk

    def writer(self, bucket: str, key: str, content_type: str) -> _Writer:
        return _Writer(self._root / bucket / key)


def _address(n: int) -> str:
    return f"user{n}@example.com"


def generate(root: Path, contacts: int) -> dict[str, int]:
    """The export's staged contacts and the list's snapshot; the opt-outs expected to be kept."""
    from batchrecs import layout

    bucket = root / "data"
    items = [str(100 + i) for i in range(10)]
    for first in range(0, contacts, PER_FILE):
        staged = bucket / layout.staged_contacts_prefix(JOB) / f"{first // PER_FILE + 1}.1.jsonl"
        staged.parent.mkdir(parents=True, exist_ok=True)
        with staged.open("wb") as out:
            # what the worker stages (``staged_tail``), formatted rather than dumped: generating is not measured
            line = orjson.dumps(
                {
                    "emailAddress": "%s",
                    "topics": [TOPIC],
                    "attributes": {"route": "weekly-email", "jobName": JOB, "items": items},
                }
            )
            lines = (
                line.replace(b"%s", _address(n).encode()) + b"\n"
                for n in range(first, min(first + PER_FILE, contacts))
            )
            for block in iter(lambda lines=lines: b"".join(islice(lines, 10_000)), b""):
                out.write(block)
    snapshot = bucket / layout.list_snapshot_key(JOB, 0)
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    expected = {"unsubscribedAll": 0, "topicOptOuts": 0}
    with snapshot.open("wb") as out:
        for n in range(0, contacts, 2):  # half the export's addresses are in the list already
            everything = n % 10 == 0
            topic_out = not everything and n % 7 == 0
            expected["unsubscribedAll"] += everything
            expected["topicOptOuts"] += topic_out
            topics = {TOPIC: "OPT_OUT"} if topic_out else {}
            out.write(orjson.dumps({"e": _address(n).upper(), "u": everything, "t": topics}) + b"\n")
    return expected


def merge(contacts: int) -> dict[str, Any]:
    from batchrecs.sinks.ses.contacts import ContactImporter
    from batchrecs.sinks.ses.settings import SesDestination

    root = Path(tempfile.mkdtemp(prefix="batchrecs-ses-bench-"))
    try:
        started = time.monotonic()
        expected = generate(root, contacts)
        generated = time.monotonic() - started
        destination = SesDestination(type="ses", contactList="bench", topic=TOPIC, address={"type": "userId"})
        cpu, wall = time.process_time(), time.monotonic()
        plan = ContactImporter(FolderObjects(root), lists=None).merge("data", JOB, destination)  # type: ignore[arg-type]
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        # the opt-outs stayed: no import record subscribes an unsubscribed contact or one that opted out
        counts = plan.counts
        assert counts["optedOut"] == expected["unsubscribedAll"] + expected["topicOptOuts"], (
            counts,
            expected,
        )
        assert counts["contacts"] == contacts - counts["optedOut"], counts
        return {
            "contacts": contacts,
            "import_files": len(plan.files),
            "opt_outs_kept": counts["optedOut"],
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "merge_cpu_s": round(cpu, 1),
            "merge_wall_s": round(wall, 1),
            "generate_s": round(generated, 1),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rss_rows() -> list[dict[str, Any]]:
    rows = []
    for contacts in CONTACTS:
        done = subprocess.run(  # noqa: S603 - this file, in a fresh process: its RSS is this run's alone
            [sys.executable, str(Path(__file__)), str(contacts)], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(done.stdout))
        print(f"ses: {contacts:,} contacts, peak RSS {rows[-1]['peak_rss_mb']} MB", file=sys.stderr)
    return rows


if __name__ == "__main__":
    sys.path[:0] = [str(HERE.parent / "layers" / "batchrecs")]
    print(json.dumps(merge(int(sys.argv[1]))))
