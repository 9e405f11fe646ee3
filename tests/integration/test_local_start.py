"""What makes the local cloud start fast, held to doing the same work (issue #17, part 5): the SAM
translation is cached by what was translated, and the monitor runs as soon as an emulated job changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import samtranslator.translator.transform as sam
from batchrecs_local.session import LocalCloud, Options
from batchrecs_local.stack import resolve_template

from tests.conftest import ROOT
from tests.integration.test_template import _parameters


def _files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.glob("sam-*.json"))


def test_a_translated_template_is_reused_only_for_the_same_template_and_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHRECS_CACHE_DIR", str(tmp_path / "cache"))
    template = tmp_path / "template.yaml"
    template.write_text((ROOT / "template.yaml").read_text())
    # Given a first start, which translates the template and keeps the result
    _, first = resolve_template(_parameters(), "batchrecs", template)
    [kept] = _files(tmp_path / "cache")

    # When it starts again with the translator unable to run
    def refuse(*_: object) -> None:
        raise AssertionError("translated again")

    with monkeypatch.context() as patched:
        patched.setattr(sam, "transform", refuse)
        _, again = resolve_template(_parameters(), "batchrecs", template)
        # Then the kept translation gave the same resources
        assert again == first
        # And other parameters, or a changed template, are not served from it
        with pytest.raises(AssertionError, match="translated again"):
            resolve_template(_parameters(RelatedItemsSolutionVersionArn=""), "batchrecs", template)
        template.write_text(template.read_text().replace("Description: >-\n", "Description: >-\n  New.\n", 1))
        os.utime(template, ns=(1, 1))  # another version of the file, whatever the clock's resolution
        with pytest.raises(AssertionError, match="translated again"):
            resolve_template(_parameters(), "batchrecs", template)
    # And a kept file cut short is translated again, not trusted
    (tmp_path / "cache" / kept).write_text('{"Resources": ')
    template.write_text((ROOT / "template.yaml").read_text())
    _, repaired = resolve_template(_parameters(), "batchrecs", template)
    assert repaired == first


def test_the_monitor_runs_when_an_emulated_job_changes_not_only_on_its_schedule() -> None:
    # Given a local cloud whose monitor schedule would tick once an hour
    saved = dict(os.environ)  # the local runtime sets the functions' variables in this process
    try:
        with LocalCloud(Options(tick_seconds=3600)) as cloud:
            # When a file is uploaded: its job is created, runs and ends in the emulator
            key = cloud.upload(ROOT / "samples" / "home" / "users.jsonl", "home")
            job = cloud.wait_for([key], timeout=30)[key]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    # Then the monitor saw the job end long before its schedule came (it alone publishes the ACTIVE that
    # starts the export: without the wake this times out), and the job was exported
    statuses = [entry["status"] for entry in job["history"]]
    assert statuses[-1] == "EXPORTED" and "ACTIVE" in statuses, statuses
