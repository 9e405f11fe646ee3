"""The operator commands against a running local cloud, as a user drives a deployed stack (issue #17,
part 1): each finds the stack by name through CloudFormation's DescribeStacks and its resources from
the stack's outputs; --endpoint-url points them at the local cloud, as at any other endpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batchrecs_local.cli import main
from batchrecs_local.session import LocalCloud, Options

from tests.conftest import ROOT

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]  # the in-process cloud


@pytest.fixture(scope="module")
def cloud_and_variables() -> Iterator[tuple[LocalCloud, dict[str, str]]]:
    environment = dict(os.environ)  # the local runtime sets the functions' variables in this process
    try:
        with LocalCloud(Options()) as local:
            yield local, dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture
def cloud(
    cloud_and_variables: tuple[LocalCloud, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> LocalCloud:
    """The module's local cloud, its functions' variables as it set them (each test's autouse fixture
    sets the unit tests' ones)."""
    local, variables = cloud_and_variables
    for name, value in variables.items():
        if not name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return local


@pytest.fixture
def operator(cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> str:
    """An operator's shell: credentials of their own (not a function's role), no stack variable."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "operator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("BATCHRECS_STACK", raising=False)
    monkeypatch.chdir(ROOT)  # samconfig.toml names the stack batchrecs, as local up calls its stack
    return cloud.endpoint.url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    """Exit code and the command's JSON (the in-process functions' own log lines are left out)."""
    code, out, _ = _run_text(capsys, *argv)
    printed = [line for line in out.splitlines() if line.startswith(("{", "["))]
    values = [json.loads(line) for line in printed]
    mine = [value for value in values if not (isinstance(value, dict) and "level" in value)]
    return code, mine[-1] if mine else None


def _run_text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_submit_waits_for_the_job_then_jobs_and_show_find_it_by_name_and_by_its_upload(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    users = ROOT / "samples" / "home" / "users.jsonl"
    # When an operator submits a file to the home route and waits
    code, out, err = _run_text(
        capsys, "submit", str(users), "--route", "home", "--wait", "--timeout", "120", "--json",
        "--endpoint-url", operator,
    )  # fmt: skip
    [shown] = [json.loads(line) for line in out.splitlines() if line.startswith('{"jobName"')]
    # Then it exits 0 with the EXPORTED job: its history, counts and where its reports are
    assert code == 0 and shown["status"] == "EXPORTED", shown["failureReason"]
    # and, stderr being no terminal here, its progress came as plain lines, the last one the end
    progress = [line for line in err.splitlines() if line.startswith(f"  {shown['jobName']}: ")]
    assert progress[-1].startswith(f"  {shown['jobName']}: EXPORTED chunks {shown['chunks']}, ")
    assert "\r" not in err and "\x1b" not in err
    statuses = [entry["status"] for entry in shown["history"]]
    assert statuses[0] == "RECEIVED" and statuses[-1] == "EXPORTED" and "EXPORTING" in statuses
    assert shown["source"] == f"s3://{cloud.bucket}/input/home/users.jsonl"
    assert shown["export"]["recordsWritten"] == len(cloud.records()) > 0
    assert shown["chunks"] == f"{shown['export']['chunks']}/{shown['export']['chunks']}"
    # And jobs lists it first (newest first), with its counts
    code, rows = _run(capsys, "jobs", "--json", "--endpoint-url", operator)
    assert code == 0 and rows[0]["jobName"] == shown["jobName"]
    assert (rows[0]["status"], rows[0]["records"]) == ("EXPORTED", shown["export"]["recordsWritten"])
    code, none = _run(capsys, "jobs", "--json", "--status", "REJECTED", "--endpoint-url", operator)
    assert (code, none) == (0, [])
    # And show finds the same job by its name and by the uploaded key (through the source index)
    for ref in (shown["jobName"], shown["source"]):
        code, again = _run(capsys, "show", ref, "--json", "--endpoint-url", operator)
        assert (code, again["jobName"], again["history"]) == (0, shown["jobName"], shown["history"])


def test_a_rejected_submit_exits_1_and_show_names_the_report(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"userId": "1"}\n{"itemId": "2"}\n')
    code, shown = _run(
        capsys, "submit", str(bad), "--route", "home", "--wait", "--json", "--endpoint-url", operator
    )
    assert code == 1 and shown["status"] == "REJECTED"
    assert "invalid lines" in shown["failureReason"]
    code, text, _ = _run_text(capsys, "show", shown["jobName"], "--endpoint-url", operator)
    assert code == 1  # the text form: the same exit code, the history and the report's place
    assert f"{shown['jobName']}  REJECTED" in text and "RECEIVED" in text
    assert f"report s3://{cloud.bucket}/rejected/home/{shown['jobName']}/bad.jsonl.report.json" in text
    code, rows = _run(capsys, "jobs", "--status", "REJECTED", "--json", "--endpoint-url", operator)
    assert [row["jobName"] for row in rows] == [shown["jobName"]]


def test_redrive_empties_both_queues_of_the_stack_and_unknown_names_are_usage_errors(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, done = _run(capsys, "redrive", "--json", "--endpoint-url", operator)
    assert code == 0
    assert (done["chunksMoved"], done["failedEvents"]["invoked"], done["failedEvents"]["left"]) == (0, 0, [])
    code, _, err = _run_text(capsys, "jobs", "--stack", "nope", "--endpoint-url", operator)
    assert code == 2 and "no stack nope" in err
    code, _, err = _run_text(capsys, "show", "no-such-job", "--endpoint-url", operator)
    assert code == 2 and "no job no-such-job" in err


def test_replay_export_writes_the_same_records_again_and_counts_them_once(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a related-items upload exported (its own route: no other test writes its records)
    items = tmp_path / "items.csv"
    items.write_bytes((ROOT / "samples" / "related" / "items.csv").read_bytes())
    code, first = _run(
        capsys, "submit", str(items), "--route", "related", "--wait", "--json", "--endpoint-url", operator
    )
    assert code == 0 and first["status"] == "EXPORTED", first["failureReason"]
    before = [record for record in cloud.records() if record["sk"] == "related"]
    # When an operator replays its export and waits
    code, again = _run(
        capsys, "replay-export", first["jobName"], "--wait", "--json", "--endpoint-url", operator
    )
    # Then it ends EXPORTED again with the same counts (not doubled) and the same records
    assert code == 0 and again["status"] == "EXPORTED", again["failureReason"]
    assert again["export"] == first["export"] and again["export"]["recordsWritten"] == len(before) > 0
    assert [record for record in cloud.records() if record["sk"] == "related"] == before
    statuses = [entry["status"] for entry in again["history"]]
    assert statuses[len(first["history"]) :] == ["ACTIVE", "EXPORTING", "EXPORTED"]
    # And a job that has not finished is not replayed (exit 2, saying why)
    code, _, err = _run_text(capsys, "replay-export", "no-such-job", "--endpoint-url", operator)
    assert code == 2 and "no job no-such-job" in err


def test_a_consumer_reads_a_users_current_records_across_routes_with_one_query(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue #17, part 6: the read path of the README's Consumers section
    from batchrecs.consumer import recommendations_for

    users = ROOT / "samples" / "home" / "users.jsonl"
    code, job = _run(
        capsys, "submit", str(users), "--route", "home", "--wait", "--json", "--endpoint-url", operator
    )
    assert code == 0, job["failureReason"]
    table = cloud.outputs["RecommendationsTableName"]
    dynamodb = cloud.endpoint.client("dynamodb")
    user = next(record["pk"] for record in cloud.records() if record["sk"] == "home")
    # Given, beside the user's home record, an expired record TTL has not deleted yet, and a segment
    # route's record of an older export than the user's newest one of that route
    base = {"pk": {"S": user}, "jobName": {"S": "x"}, "items": {"L": []}}
    later = {"S": "2026-12-05T00:00:00Z"}
    for sk, generated, expires in (
        ("gone", later, 1_000),
        ("segments#7", {"S": "2026-11-01T00:00:00Z"}, 4_000_000_000),
        ("segments#9", later, 4_000_000_000),
    ):
        route = sk.split("#")[0]
        item = {**base, "sk": {"S": sk}, "route": {"S": route}, "generatedAt": generated}
        dynamodb.put_item(
            TableName=table, Item={**item, "expiresAt": {"N": str(expires)}, "rank": {"N": "3"}}
        )
    # When the application reads the user's recommendations
    found = recommendations_for(user, table, client=dynamodb)
    # Then it gets the home record as the export wrote it and the newest segment, and what was skipped
    [home] = found.route("home")
    stored = next(r for r in cloud.records() if r["sk"] == "home" and r["pk"] == user)
    assert (home.items, home.jobName, home.solutionVersionArn) == (
        stored["items"],
        job["jobName"],
        stored["solutionVersionArn"],
    )
    assert [record.rank for record in found.route("segments")] == [3] and found.routes == ["home", "segments"]
    assert (found.skipped_expired, found.skipped_older) == (1, 1)


def test_erase_deletes_a_users_records_of_every_route_and_their_contact_found_in_the_directory(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given user 12's records on two routes (a segment route's too), a record of user 120 (a
    # different user whose id starts the same), and user 12's contact subscribed in the stack's list
    table, contacts = cloud.outputs["RecommendationsTableName"], cloud.outputs["ContactListName"]
    dynamodb, ses = cloud.endpoint.client("dynamodb"), cloud.endpoint.client("sesv2")
    for pk, sk in (("12", "home"), ("12", "segments#7"), ("12", "segments#9"), ("120", "home")):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}})
    ses.create_contact(ContactListName=contacts, EmailAddress="user12@example.com")  # the seeded directory's
    # When the operator erases user 12, giving only the id
    code, erased = _run(capsys, "erase", "--user", "12", "--json", "--endpoint-url", operator)
    # Then the three records and the contact, whose address the user directory holds, are gone
    assert (code, erased) == (0, {"user": "12", "records": 3, "contact": True, "addressKnown": True})
    left = dynamodb.query(
        TableName=table, KeyConditionExpression="pk = :u", ExpressionAttributeValues={":u": {"S": "12"}}
    )
    assert left["Items"] == []
    listed = ses.list_contacts(ContactListName=contacts)["Contacts"]
    assert "user12@example.com" not in {contact["EmailAddress"] for contact in listed}
    assert dynamodb.get_item(TableName=table, Key={"pk": {"S": "120"}, "sk": {"S": "home"}}).get("Item")
    # And a user the directory has no address for (every tenth) is erased from the table and told so
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "10"}, "sk": {"S": "home"}})
    code, text, _ = _run_text(capsys, "erase", "--user", "10", "--endpoint-url", operator)
    assert code == 0
    assert "deleted 1 record of user 10; no address for them in the user directory (give one" in text


def test_a_route_whose_model_parameter_is_empty_is_named_off_by_jobs_and_refused_by_submit(
    cloud: LocalCloud, operator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the stack's outputs as DescribeStacks answers them: every model named, here
    variables = dict(pair.split("=", 1) for pair in cloud.outputs["ModelVariables"].split(","))
    assert variables and all(value.startswith("arn:aws:personalize:") for value in variables.values())
    code, _ = _run(capsys, "jobs", "--json", "--endpoint-url", operator)
    assert code == 0 and "turned off" not in capsys.readouterr().err
    # and a stack deployed with RelatedItemsSolutionVersionArn left empty (issue #17, part 3)
    off = {**variables, "RELATED_ITEMS_SOLUTION_VERSION_ARN": ""}
    outputs = {**cloud.outputs, "ModelVariables": ",".join(f"{k}={v}" for k, v in off.items())}
    cloud.endpoint.stacks.put("batchrecs-related-off", outputs)
    stack = ("--stack", "batchrecs-related-off", "--endpoint-url", operator)
    # When the operator lists its jobs, and submits a file to the related route
    code, _, err = _run_text(capsys, "jobs", *stack)
    assert code == 0
    # Then jobs says which routes are off and why (related and themes use that model)
    assert "route related is turned off in stack batchrecs-related-off: its solutionVersionArn" in err
    assert "route themes is turned off in stack batchrecs-related-off" in err
    items = ROOT / "samples" / "related" / "items.csv"
    s3 = cloud.endpoint.client("s3")

    def uploads() -> int:  # versions of objects under input/related/ (the bucket is versioned)
        listed = s3.list_object_versions(Bucket=cloud.bucket, Prefix="input/related/")
        return len(listed.get("Versions", []))

    before = uploads()
    code, _, err = _run_text(capsys, "submit", str(items), "--route", "related", *stack)
    # And the upload is refused before anything is uploaded (exit 2: the route is not usable)
    assert code == 2 and "route related is turned off in stack batchrecs-related-off" in err
    assert uploads() == before
