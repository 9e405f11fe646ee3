"""What a local start keeps for the next one, by the hash of what it was made from: the translated
template (importing the SAM translator and translating take 0.25 s) and the emulator's generated dataset
(0.08 s). ``$BATCHRECS_CACHE_DIR``, else ``$XDG_CACHE_HOME/batchrecs``, else ``~/.cache/batchrecs``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    given = os.environ.get("BATCHRECS_CACHE_DIR")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "batchrecs"


def read(name: str) -> bytes | None:
    """The file kept as ``name``, or None when there is none."""
    try:
        return (cache_dir() / name).read_bytes()
    except OSError:
        return None


def keep(name: str, data: bytes) -> None:
    """Keep ``data`` as ``name``: written whole, then renamed, so a reader sees the old file or the new one.
    A home that cannot be written to keeps nothing (it is made again next time)."""
    kept = cache_dir() / name
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        partial = kept.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(data)
        os.replace(partial, kept)
    except OSError:
        pass
