from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from batchrecs.export.records import RecordContext, number_list, record_item, record_key, string_list
from batchrecs.formats.output_lines import OutLine

GENERATED = datetime(2026, 11, 23, 5, 0, 0, tzinfo=UTC)


def test_record_has_every_specified_attribute_in_dynamodb_wire_format() -> None:
    # Given a parsed line with scores and a 30-day route
    ctx = RecordContext.for_job("home", "home-users-abc", GENERATED, ttl_days=30)
    line = OutLine("4638", ["63992", "115149"], ["0.0152238", "0.0069081"])
    # When it becomes a record
    item = orjson.loads(record_item(line, ctx.shared))
    # Then pk/sk, items in rank order, scores as numbers and the TTL are exactly as specified
    assert record_key(line, ctx) == ("4638", "home")
    assert item == {
        "pk": {"S": "4638"},
        "sk": {"S": "home"},
        "items": {"L": [{"S": "63992"}, {"S": "115149"}]},
        "scores": {"L": [{"N": "0.0152238"}, {"N": "0.0069081"}]},
        "route": {"S": "home"},
        "jobName": {"S": "home-users-abc"},
        "generatedAt": {"S": "2026-11-23T05:00:00Z"},
        "expiresAt": {"N": str(int(datetime(2026, 12, 23, 5, 0, tzinfo=UTC).timestamp()))},
    }


def test_no_scores_attribute_when_the_recipe_gives_none() -> None:
    ctx = RecordContext.for_job("related", "j", GENERATED, ttl_days=1)
    assert "scores" not in orjson.loads(record_item(OutLine("105", ["106"], None), ctx.shared))


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["a"],
        ["a", "b"],
        ['quote"d', "x"],
        ['a","b', "c"],
        ["back\\slash", "uni\u00e9", "tab\t"],
        ["", ""],
    ],
)
def test_string_lists_encode_exactly_as_a_json_encoder_would(values: list[str]) -> None:
    assert orjson.loads(string_list(values)) == {"L": [{"S": value} for value in values]}


def test_number_lists_keep_the_texts() -> None:
    assert number_list(["0.10", "1.2E-5"]) == b'{"L":[{"N":"0.10"},{"N":"1.2E-5"}]}'
    assert orjson.loads(number_list([])) == {"L": []}
