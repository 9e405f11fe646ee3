"""Fresh models on the local cloud, with the template's IAM enforced (issue #14): a refreshing route's
upload imports fresh interactions, trains a new solution version, runs the batch job on it and exports
records that name it (and the new model recommends differently); a scheduled route's schedule, kept in
step with the routes file by the monitor, submits its standing input once per scheduled time."""

from __future__ import annotations

from pathlib import Path

import pytest
from batchrecs_local.runtime import wait_until
from batchrecs_local.session import LocalCloud, Options

from tests.conftest import ROOT

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]  # the in-process cloud

ROUTE = """
  fresh:
    kind: user-personalization
    solutionArn: ${USER_PERSONALIZATION_SOLUTION_ARN}
    numResults: 10
    refresh:
      datasetImport:
        datasetArn: arn:aws:personalize:us-east-1:123456789012:dataset/local/INTERACTIONS
        dataKey: datasets/fresh-interactions.csv
      train: {trainingMode: FULL}
    destination: {type: dynamodb}
  weekly:
    kind: user-personalization
    solutionArn: ${USER_PERSONALIZATION_SOLUTION_ARN}
    schedule: cron(0 6 ? * MON *)
    scheduleTimezone: Europe/Paris
    standingInput: input/weekly/all-users.jsonl
    destination: {type: dynamodb}
"""


def test_an_upload_of_a_refreshing_route_retrains_and_exports_the_new_models_records(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text((ROOT / "config" / "routes.yaml").read_text() + ROUTE)
    with LocalCloud(Options(routes_file=routes)) as cloud:
        training = cloud.endpoint.emulator.training
        first = cloud.endpoint.emulator.solution_versions["aws-user-personalization"]
        dataset = training.dataset
        genre, loved = dataset.new_taste("1")  # the genre user 1 cares least for, half its unseen items
        before, _ = training.version(first).recommender.recommend("1", 10)  # type: ignore[union-attr]
        # Given fresh interactions in datasets/: user 1 now loves that genre
        csv = "USER_ID,ITEM_ID,TIMESTAMP\n" + "".join(
            f"1,{item},{1_800_000_000 + n}\n" for n, item in enumerate(loved)
        )
        s3 = cloud.endpoint.client("s3")
        s3.put_object(Bucket=cloud.bucket, Key="datasets/fresh-interactions.csv", Body=csv.encode())
        # When users are uploaded to the refreshing route
        users = tmp_path / "users.jsonl"
        users.write_text('{"userId": "1"}\n{"userId": "2"}\n')
        key = cloud.upload(users, "fresh")
        job = cloud.wait_for([key], timeout=120)[key]
        # Then the data was imported, a version 2 trained, and the batch job ran on it
        assert job["status"] == "EXPORTED", job.get("failureReason")
        second = first.rsplit("/", 1)[0] + "/2"
        assert (job["solutionVersionArn"], job["refreshVersionArn"]) == (second, second)
        assert job["refreshImportArn"].endswith(f":dataset-import-job/{job['jobName']}")
        records = {record["pk"]: record for record in cloud.records() if record["sk"] == "fresh"}
        assert set(records) == {"1", "2"}
        assert {record["solutionVersionArn"] for record in records.values()} == {second}
        # And the new model moved user 1's recommendations to the genre (measured, printed)
        share_before, share_after = (
            dataset.genre_share(before, genre),
            dataset.genre_share(records["1"]["items"], genre),
        )
        print(
            f"user 1's top 10 in {genre}: {share_before:.0%} with version 1, {share_after:.0%} with version 2"
        )
        assert share_before <= 0.2 and share_after >= 0.8


def test_a_scheduled_route_gets_its_schedule_and_each_tick_submits_the_standing_input_once(
    tmp_path: Path,
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text((ROOT / "config" / "routes.yaml").read_text() + ROUTE)
    with LocalCloud(Options(routes_file=routes)) as cloud:
        scheduler = cloud.endpoint.client("scheduler")
        group = cloud.stack.physical["RouteSchedules"]  # type: ignore[union-attr]
        # The monitor made the route's schedule from the routes file (on its first tick)
        schedule = wait_until(lambda: _schedule(scheduler, group), timeout=30)
        assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == (
            "cron(0 6 ? * MON *)",
            "Europe/Paris",
        )
        target = schedule["Target"]
        assert target["Arn"].endswith(":function:" + cloud.stack.functions["SubmitFunction"].name)  # type: ignore[union-attr]
        assert target["DeadLetterConfig"]["Arn"].endswith("failedeventsqueue")
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
        # A tick before the standing input exists: a REJECTED job saying so
        missing = cloud.wait_for_job(cloud.fire_schedule("weekly", "2026-11-30T05:00:00Z"), timeout=60)
        assert missing["status"] == "REJECTED"
        assert missing["failureReason"].endswith("input/weekly/all-users.jsonl does not exist")
        # Then with the standing input: one job per scheduled time, the same for a tick delivered twice
        users = tmp_path / "all-users.jsonl"
        users.write_text('{"userId": "1"}\n{"userId": "2"}\n')
        cloud.upload(users, "weekly")  # the standing input: data for the schedule, no job of its own
        monday = cloud.fire_schedule("weekly", "2026-12-07T05:00:00Z")
        assert cloud.fire_schedule("weekly", "2026-12-07T05:00:00Z") == monday
        job = cloud.wait_for_job(monday, timeout=120)
        assert job["status"] == "EXPORTED", job.get("failureReason")
        assert job["jobName"].startswith("weekly-all-users-20261207T0500-")
        weekly = [j for j in cloud.jobs() if j["sourceKey"] == "input/weekly/all-users.jsonl"]
        assert sorted(j["jobName"] for j in weekly) == sorted([missing["jobName"], monday])  # ticks only
        # A route whose schedule is taken out of the routes file loses it on the next tick
        routes.write_text((ROOT / "config" / "routes.yaml").read_text())
        from batchrecs_local.runtime import _cold_start

        _cold_start()  # new containers read the new routes file
        wait_until(lambda: _schedule(scheduler, group) is None or None, timeout=30)


def _schedule(scheduler, group: str):  # type: ignore[no-untyped-def]
    try:
        return scheduler.get_schedule(Name="weekly", GroupName=group)
    except scheduler.exceptions.ResourceNotFoundException:
        return None
