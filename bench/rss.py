"""This process's peak resident set size.

``getrusage``'s ``ru_maxrss`` survives ``exec`` on Linux: a child started from a big parent reports at
least the parent's size. ``VmHWM`` (``/proc/self/status``) belongs to the new program's memory and starts
from zero, so it is what a fresh process's figure must be read from (``ru_maxrss`` elsewhere).
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
