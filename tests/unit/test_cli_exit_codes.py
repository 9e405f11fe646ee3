"""One exit-code table for every command (``batchrecs_local.cli.EXIT_CODES``), with one line of message
and no traceback. Everything here stops before a local cloud would start, so it runs in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchrecs_local.cli import EXIT_CODES, main

SAMPLE = b'{"userId": "1"}\n'


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "users.jsonl"
    good.write_bytes(SAMPLE)
    bad_routes = tmp_path / "routes.yaml"
    bad_routes.write_text("routes:\n  home: {kind: nope}\n")
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as file:
        file.truncate((4 << 30) + 1)  # sparse: over the 4 GiB of an upload (4 jobs) without writing it
    return {
        "good": good,
        "bad_routes": bad_routes,
        "folder": tmp_path,
        "huge": huge,
        "missing": tmp_path / "x",
    }


def _run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    code = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


@pytest.mark.parametrize("command", [["validate"], ["local", "run"], ["local", "export"]])
@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("missing", [], "no such file"),
        ("folder", [], "is a folder, not a file"),
        ("good", ["--routes", "bad_routes"], "invalid routes"),
        ("good", ["--route", "nope"], "no route named 'nope'"),
    ],
)
def test_usage_and_configuration_errors_exit_2_in_one_line_for_every_command(
    capsys: pytest.CaptureFixture[str],
    files: dict[str, Path],
    command: list[str],
    case: str,
    extra: list[str],
    message: str,
) -> None:
    args = [files.get(arg, arg) if arg == "bad_routes" else arg for arg in extra]
    if "--route" not in args:
        args += ["--route", "home"]
    code, err = _run(capsys, *command, files[case], *args)
    assert code == 2, err
    [said] = [line for line in err.splitlines() if line.startswith("batchrecs:")]
    assert message in said


def test_local_up_with_a_bad_routes_file_exits_2_before_it_starts(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code, err = _run(capsys, "local", "up", "--routes", files["bad_routes"], "--port", "0")
    assert code == 2 and "invalid routes" in err


def test_validate_does_what_submit_does_a_file_over_4_gib_is_invalid_before_it_is_read(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    code = main(["validate", str(files["huge"]), "--route", "home"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"expected a file of at most {4 << 30} bytes, found {(4 << 30) + 1} bytes" in out


def test_valid_and_invalid_files_exit_0_and_1(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path]
) -> None:
    assert main(["validate", str(files["good"]), "--kind", "user-personalization"]) == 0
    files["good"].write_bytes(b'{"userId": 1}\n')
    assert main(["validate", str(files["good"]), "--kind", "user-personalization"]) == 1
    assert _run(capsys, "validate", files["good"], "--kind", "nope")[0] == 2


def test_the_table_is_in_the_help() -> None:
    from batchrecs_local.cli import _parser

    help_text = _parser().format_help()
    assert all(f"  {code}  {meaning}" in help_text for code, meaning in EXIT_CODES.items())


def test_the_shipped_routes_check_offline_without_any_variable_set(
    capsys: pytest.CaptureFixture[str], files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a user's shell has none of the template's variables: placeholders stand in for them, a solution's
    # for ${..._SOLUTION_ARN} (a solutionArn route) and a version's for the others
    import os

    for name in [name for name in os.environ if name.endswith("_ARN") or name.endswith("_NAME")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("USER_DIRECTORY_TABLE", raising=False)
    code, err = _run(capsys, "validate", files["good"], "--route", "weekly-email")
    assert (code, err) == (0, "")


def test_local_tick_needs_a_scheduled_route(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, "local", "tick", "home")
    assert code == 2  # usage or configuration
    assert "route home has no schedule and standingInput in the routes file" in err


def test_validate_applies_a_themes_routes_100_line_limit_as_submit_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    items = tmp_path / "items.jsonl"
    items.write_bytes(b"".join(b'{"itemId": "%d"}\n' % i for i in range(101)))
    assert main(["validate", str(items), "--route", "themes"]) == 1
    assert "at most 100 lines for related-items with themes" in capsys.readouterr().out
    assert main(["validate", str(items), "--route", "related"]) == 0  # without themes: no such limit
