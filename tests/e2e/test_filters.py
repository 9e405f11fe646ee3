"""Filters on the local cloud, the template's IAM enforced (issue #15, part 4): a route's filterArn is sent
with every job and each line's filterValues fill its placeholders; filterValues on a route without a
filter are a line problem; an unknown filter is REJECTED with the service's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batchrecs_local.session import LocalCloud, Options

from tests.conftest import ROOT

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]  # the in-process cloud

ROUTES = """
  picks:
    kind: user-personalization
    solutionVersionArn: ${USER_PERSONALIZATION_SOLUTION_VERSION_ARN}
    numResults: 10
    filterArn: arn:aws:personalize:us-east-1:123456789012:filter/batchrecs-local-genre
    destination: {type: dynamodb}
  unknown-filter:
    kind: user-personalization
    solutionVersionArn: ${USER_PERSONALIZATION_SOLUTION_VERSION_ARN}
    filterArn: arn:aws:personalize:us-east-1:123456789012:filter/batchrecs-local-nope
    destination: {type: dynamodb}
"""


def test_filters_are_sent_applied_per_line_and_refused_where_the_route_has_none(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text((ROOT / "config" / "routes.yaml").read_text() + ROUTES)
    horror_only = tmp_path / "horror.jsonl"
    horror_only.write_text(
        '{"userId": "1", "filterValues": {"GENRE": "\\"Horror\\""}}\n{"userId": "2", "filterValues": {"GENRE": "\\"Comedy\\""}}\n'
    )
    wrong_key = tmp_path / "wrong-key.jsonl"
    wrong_key.write_text('{"userId": "3", "filterValues": {"COLOR": "\\"red\\""}}\n')
    with LocalCloud(Options(routes_file=routes)) as cloud:
        keys = {
            "picks": cloud.upload(horror_only, "picks"),
            "wrong-key": cloud.upload(wrong_key, "picks", "wrong-key.jsonl"),
            "home": cloud.upload(horror_only, "home"),  # home has no filter
            "unknown": cloud.upload(horror_only, "unknown-filter"),
        }
        jobs = cloud.wait_for(list(keys.values()), timeout=120)
        genres = dict(
            zip(
                cloud.endpoint.emulator.training.dataset.item_ids,
                cloud.endpoint.emulator.training.dataset.item_genres,
                strict=True,
            )
        )
        records = {r["pk"]: r for r in cloud.records() if r["sk"] == "picks"}
        picks = jobs[keys["picks"]]
        assert picks["status"] == "EXPORTED", picks.get("failureReason")
        assert json.loads(picks["request"])["filterArn"].endswith(":filter/batchrecs-local-genre")
        # Then each line's filter values applied: user 1 only Horror titles, user 2 only Comedy ones
        assert records["1"]["items"] and all("Horror" in genres[i].split("|") for i in records["1"]["items"])
        assert records["2"]["items"] and all("Comedy" in genres[i].split("|") for i in records["2"]["items"])
        # And a value for a placeholder the filter lacks is that line's error, reported by the export
        wrong = jobs[keys["wrong-key"]]
        assert (wrong["status"], wrong["export"]["linesFailed"]) == ("EXPORTED", 1)
        # And filterValues on a route without a filter are line problems: nothing is submitted
        home = jobs[keys["home"]]
        assert home["status"] == "REJECTED"
        report = cloud.read(home["reportKey"]).decode()
        assert "no filterValues: the route has no filterArn" in report
        # And a filter that does not exist rejects the job with the service's message
        unknown = jobs[keys["unknown"]]
        assert unknown["status"] == "REJECTED"
        assert unknown["failureReason"].startswith("ResourceNotFoundException: Could not find filter")
