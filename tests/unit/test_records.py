from __future__ import annotations

from datetime import UTC, datetime

from batchrecs.export.records import RecordContext, record_item, record_key
from batchrecs.formats.output_lines import OutLine

GENERATED = datetime(2026, 11, 23, 5, 0, 0, tzinfo=UTC)


def test_record_has_every_specified_attribute_in_dynamodb_wire_format() -> None:
    # Given a parsed line with scores and a 30-day route
    ctx = RecordContext.for_job("home", "home-users-abc", GENERATED, ttl_days=30)
    line = OutLine("4638", ["63992", "115149"], ["0.0152238", "0.0069081"])
    # When it becomes a record
    item = record_item(line, ctx)
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
    assert "scores" not in record_item(OutLine("105", ["106"], None), ctx)
