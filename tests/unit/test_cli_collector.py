"""A command that starts a local cloud keeps the garbage collector off until the cloud has started, then
runs it again without passing over what the start made (``cli.main``, ``cli._started``); ``main`` also
runs in-process (these tests, the exit-code tests), so it leaves the collector as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batchrecs_local import cli


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    yield
    gc.unfreeze()
    gc.enable()


class _Cloud:
    """Stands in for LocalCloud: notes the collector's state while it starts and while it runs."""

    seen: dict[str, Any] = {}

    def __init__(self, options: Any) -> None:
        self.options = options

    def __enter__(self) -> _Cloud:
        _Cloud.seen["collecting while starting"] = gc.isenabled()
        return self

    def __exit__(self, *exc: object) -> None:
        _Cloud.seen["frozen while stopping"] = gc.get_freeze_count()


def test_a_started_cloud_runs_with_the_collector_on_and_what_its_start_made_frozen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("batchrecs_local.session.LocalCloud", _Cloud)
    gc.disable()  # as main does
    kept = [[index] for index in range(1000)]  # long-lived objects the start made
    with cli._started("options") as cloud:
        assert cloud.options == "options"
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
    assert _Cloud.seen["collecting while starting"] is False
    assert _Cloud.seen["frozen while stopping"] == 0  # unfrozen before the cloud is gone
    assert gc.get_freeze_count() == 0


def test_a_command_that_fails_before_its_cloud_starts_leaves_the_collector_on(tmp_path: Path) -> None:
    assert gc.isenabled()
    code = cli.main(["local", "run", str(tmp_path / "missing.jsonl"), "--route", "home"])
    assert code == 2
    assert gc.isenabled()


def test_a_command_run_with_the_collector_off_leaves_it_off(tmp_path: Path) -> None:
    gc.disable()
    code = cli.main(["local", "run", str(tmp_path / "missing.jsonl"), "--route", "home"])
    assert code == 2
    assert not gc.isenabled()
