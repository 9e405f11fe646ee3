"""``batchrecs local run / export`` and ``batchrecs validate``, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, shipped_routes_with
from tests.e2e.conftest import SAMPLES, batchrecs, read_jsonl


@pytest.mark.parametrize(
    ("route", "sample", "written", "failed", "skipped"),
    [
        ("home", SAMPLES / "home" / "users.jsonl", 42, 0, 0),
        ("related", SAMPLES / "related" / "items.csv", 15, 1, 1),
        ("ranking", SAMPLES / "ranking" / "users.json", 10, 0, 0),
    ],
)
def test_each_shipped_route_runs_end_to_end(
    tmp_path: Path, route: str, sample: Path, written: int, failed: int, skipped: int
) -> None:
    # Given a sample file for a shipped route, When a user runs it through a fresh local cloud
    result = batchrecs("local", "run", sample, "--route", route, "--json", "--dump", tmp_path)
    # Then it is processed, with the counts a user can check against the file
    assert result.code == 0, result.stderr[-3000:]
    summary = result.json
    assert summary["status"] == "EXPORTED"
    assert (summary["records_written"], summary["lines_failed"], summary["lines_skipped"]) == (
        written,
        failed,
        skipped,
    )
    assert summary["lines"] == written + failed
    # And the dump holds exactly those records, as plain JSON a consumer would read
    records = read_jsonl(tmp_path / "records.jsonl")
    assert len(records) == written
    assert {record["sk"] for record in records} == {route}
    assert all(record["jobName"] == summary["job_name"] for record in records)
    assert all(isinstance(record["expiresAt"], int) for record in records)
    if route in ("home", "ranking"):
        assert all(len(record["scores"]) == len(record["items"]) for record in records)
    [job] = read_jsonl(tmp_path / "jobs.jsonl")
    assert job["status"] == "EXPORTED" and job["export"]["recordsWritten"] == written


@pytest.mark.parametrize(
    ("route", "sample", "segments"),
    [
        ("segments", SAMPLES / "segments" / "items.jsonl", 5),
        ("segment-attributes", SAMPLES / "segment-attributes" / "queries.jsonl", 3),
    ],
)
def test_segment_routes_store_one_record_per_user_and_segment(
    tmp_path: Path, route: str, sample: Path, segments: int
) -> None:
    # Given a batch segment job's sample, When it runs through a fresh local cloud
    result = batchrecs("local", "run", sample, "--route", route, "--json", "--dump", tmp_path)
    assert result.code == 0, result.stderr[-3000:]
    summary = result.json
    # Then every line (segment) is written, as one record per user in it, ranked from 1
    assert (summary["status"], summary["lines"], summary["lines_written"]) == ("EXPORTED", segments, segments)
    records = read_jsonl(tmp_path / "records.jsonl")
    assert len(records) == summary["records_written"] > segments
    by_segment: dict[str, list[int]] = {}
    for record in records:
        assert record["sk"].startswith(f"{route}#") and record["jobName"] == summary["job_name"]
        by_segment.setdefault(record["sk"], []).append(record["rank"])
    assert len(by_segment) == segments
    assert all(sorted(ranks) == list(range(1, len(ranks) + 1)) for ranks in by_segment.values())


def test_related_route_reports_the_skipped_row_and_the_unknown_item(tmp_path: Path) -> None:
    result = batchrecs(
        "local", "run", SAMPLES / "related" / "items.csv", "--route", "related", "--json", "--dump", tmp_path
    )
    job_name = result.json["job_name"]
    validation = (tmp_path / "reports" / job_name / "validation.json").read_text()
    assert '"line": 18' in validation and "2 values" in validation
    [report] = (tmp_path / "reports" / job_name / "errors").iterdir()
    [error] = read_jsonl(report)
    assert error["reason"] == "Personalize error: Item 999999 not found in the training data"


@pytest.mark.parametrize("max_workers", [None, 3])
def test_export_fans_out_over_several_chunks_and_workers(tmp_path: Path, max_workers: int | None) -> None:
    # Given chunks of 1 KiB, so the 42-user output (about 15 KiB) is split over many worker invocations,
    # and the route either unlimited or limited to 3 chunks at once (3 groups of the FIFO chunks queue)
    routes_file = shipped_routes_with(tmp_path, "home", maxExportWorkers=max_workers)
    result = batchrecs(
        "local",
        "run",
        SAMPLES / "home" / "users.jsonl",
        "--route",
        "home",
        "--routes",
        routes_file,
        "--chunk-bytes",
        "1024",
        "--json",
        "--dump",
        tmp_path / "dump",
    )
    assert result.code == 0, result.stderr[-3000:]
    summary = result.json
    # Then every line was exported exactly once across the chunks
    assert summary["chunks"] > 5
    assert (summary["lines"], summary["records_written"], summary["lines_failed"]) == (42, 42, 0)
    assert len({record["pk"] for record in read_jsonl(tmp_path / "dump" / "records.jsonl")}) == 42
    [job] = read_jsonl(tmp_path / "dump" / "jobs.jsonl")
    assert len(job["chunksDone"]) == summary["chunks"]


def test_rejected_file_exits_1_with_a_line_numbered_report(tmp_path: Path) -> None:
    result = batchrecs(
        "local", "run", SAMPLES / "rejected.jsonl", "--route", "home", "--json", "--dump", tmp_path
    )
    assert result.code == 1
    summary = result.json
    assert (summary["status"], summary["rejected"], summary["records_written"]) == ("REJECTED", True, 0)
    assert summary["report"] == f"rejected/home/{summary['job_name']}/rejected.jsonl.report.json"
    report = (tmp_path / summary["report"]).read_text()
    assert '"line": 2' in report and '"line": 3' in report
    assert (tmp_path / "records.jsonl").read_text() == ""


def test_a_job_that_fails_in_personalize_exits_1_with_the_reason(tmp_path: Path) -> None:
    # Given a route whose solution version is of the wrong recipe (related items for user ids)
    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "routes:\n  broken:\n    kind: user-personalization\n"
        "    solutionVersionArn: arn:aws:personalize:us-east-1:123456789012:solution/local-similar-items/1\n"
        "    destination: {type: dynamodb}\n"
    )
    # When a valid file is run through it
    result = batchrecs(
        "local", "run", SAMPLES / "home" / "users.jsonl", "--route", "broken", "--routes", routes, "--json"
    )
    # Then Personalize (the emulator) fails the job and the user is told why
    assert result.code == 1
    summary = result.json
    assert summary["status"] == "CREATE FAILED"
    assert "does not match the aws-similar-items recipe" in summary["failure_reason"]


def test_replayed_export_writes_records_and_reports_bad_lines(tmp_path: Path) -> None:
    # Given a finished job's output: the documented lines plus the older guide's invalid-JSON lines
    out_file = tmp_path / "users.jsonl.out"
    out_file.write_bytes(
        (FIXTURES / "seed002_user_personalization.out.jsonl").read_bytes()
        + (FIXTURES / "seed000_user_personalization.out.jsonl").read_bytes()
    )
    # When an operator replays the export on the home route
    result = batchrecs("local", "export", out_file, "--route", "home", "--json", "--dump", tmp_path / "dump")
    # Then the good lines are records and the bad ones are reported
    assert result.code == 0, result.stderr[-3000:]
    summary = result.json
    assert (summary["status"], summary["lines"], summary["records_written"], summary["lines_failed"]) == (
        "EXPORTED",
        6,
        3,
        3,
    )
    records = {record["pk"]: record for record in read_jsonl(tmp_path / "dump" / "records.jsonl")}
    assert set(records) == {"4638", "663", "3384"}
    assert records["4638"]["items"][:2] == ["63992", "115149"]
    assert records["4638"]["scores"][0] == 0.0152238


def test_validate_accepts_a_good_file_and_explains_a_bad_one(tmp_path: Path) -> None:
    good = batchrecs("validate", SAMPLES / "ranking" / "users.json", "--route", "ranking")
    assert good.code == 0, good.stdout + good.stderr
    assert "valid for personalized-ranking" in good.stdout
    bad = batchrecs("validate", SAMPLES / "rejected.jsonl", "--kind", "user-personalization")
    assert bad.code == 1
    assert (
        "line 2: expected userId: a non-empty string of at most 256 characters, found number 2" in bad.stdout
    )
    as_json = batchrecs("validate", SAMPLES / "rejected.jsonl", "--route", "home", "--json")
    assert as_json.code == 1
    assert as_json.json["totals"]["invalid"] == 2
    unknown = batchrecs("validate", SAMPLES / "rejected.jsonl", "--route", "nope")
    assert unknown.code == 2 and "no route named 'nope'" in unknown.stderr


def test_local_tick_fires_a_scheduled_routes_schedule_and_drives_its_job(tmp_path: Path) -> None:
    routes = shipped_routes_with(
        tmp_path, "home", schedule="rate(7 days)", standingInput="input/home/all-users.jsonl"
    )
    result = batchrecs(
        "local", "tick", "home", "--routes", routes, "--input", SAMPLES / "home" / "users.jsonl", "--json"
    )
    assert result.code == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["job_name"].startswith("home-all-users-") and summary["status"] == "EXPORTED"
    assert (summary["lines"], summary["records_written"], summary["lines_superseded"]) == (42, 42, 0)
