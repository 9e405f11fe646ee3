"""The CreateBatchInferenceJob / CreateBatchSegmentJob request a route makes (issue #15, parts 2 and 3)."""

from __future__ import annotations

import pytest
from batchrecs.errors import ConfigError
from batchrecs.routes.config import parse_routes
from batchrecs.settings import SubmitSettings
from batchrecs.submit.request import build_request

from tests.conftest import SOLUTION_ARNS

ARN = SOLUTION_ARNS["USER_PERSONALIZATION_SOLUTION_VERSION_ARN"]
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::123456789012:role/personalize"


def _route(kind: str, extra: str = "") -> str:
    return f"routes:\n  r:\n    kind: {kind}\n    solutionVersionArn: {ARN}\n    destination: {{type: dynamodb}}\n{extra}"


def test_a_data_key_is_named_for_the_jobs_input_and_output() -> None:
    route = parse_routes(_route("item-affinity"), {}).get("r")
    request = build_request(route, "j", "s3://b/staged/x", "s3://b/output/r/j/", ROLE, KEY)
    # S3DataConfig.kmsKeyArn on both sides (CreateBatchSegmentJob / CreateBatchInferenceJob API)
    assert request["jobInput"] == {"s3DataSource": {"path": "s3://b/staged/x", "kmsKeyArn": KEY}}
    assert request["jobOutput"] == {"s3DataDestination": {"path": "s3://b/output/r/j/", "kmsKeyArn": KEY}}
    without = build_request(route, "j", "s3://b/staged/x", "s3://b/output/r/j/", ROLE)
    assert without["jobInput"] == {"s3DataSource": {"path": "s3://b/staged/x"}}


def test_the_submit_settings_take_a_kms_key_arn_or_nothing() -> None:
    base = {"jobs_table_name": "t", "event_bus_name": "b", "routes_file": "r", "personalize_role_arn": ROLE}
    assert SubmitSettings(**base).data_kms_key_arn == ""
    assert SubmitSettings(**base, data_kms_key_arn=KEY).data_kms_key_arn == KEY
    with pytest.raises(ValueError, match="data_kms_key_arn"):
        SubmitSettings(**base, data_kms_key_arn="alias/my-key")  # the API model wants a key ARN


def test_ranking_influence_is_sent_in_the_batch_inference_job_config() -> None:
    route = parse_routes(
        _route(
            "user-personalization",
            "    rankingInfluence: {POPULARITY: 0.25, FRESHNESS: 0.5}\n"
            "    itemExplorationConfig: {explorationWeight: 0.3}\n",
        ),
        {},
    ).get("r")
    request = build_request(route, "j", "s3://b/i", "s3://b/o/", ROLE)
    assert request["batchInferenceJobConfig"] == {
        "itemExplorationConfig": {"explorationWeight": "0.3"},
        "rankingInfluence": {"POPULARITY": 0.25, "FRESHNESS": 0.5},
    }


@pytest.mark.parametrize(
    ("kind", "influence", "message"),
    [
        ("user-personalization", "{POPULARITY: 1.5}", "field 'rankingInfluence.POPULARITY'"),
        ("user-personalization", "{RECENCY: 0.5}", "field 'rankingInfluence.RECENCY'"),
        ("related-items", "{POPULARITY: 0.5}", "rankingInfluence applies only to kind user-personalization"),
        ("item-affinity", "{POPULARITY: 0.5}", "rankingInfluence applies only to kind user-personalization"),
    ],
)
def test_ranking_influence_is_checked_at_load(kind: str, influence: str, message: str) -> None:
    # the API model: keys POPULARITY | FRESHNESS, 0-1; a batch inference option (segment jobs have no
    # batchInferenceJobConfig), sent for user-personalization routes only
    with pytest.raises(ConfigError, match=message):
        parse_routes(_route(kind, f"    rankingInfluence: {influence}\n"), {})
