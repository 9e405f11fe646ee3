from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from batchrecs.formats.output_lines import OutLine, SegmentLine, parse_segment_line
from batchrecs.routes.config import JobKind
from batchrecs.sinks.dynamodb.records import (
    RecordContext,
    number_list,
    record_item,
    record_key,
    segment_key,
    segment_records,
    string_list,
)

IA = JobKind.ITEM_AFFINITY
IAA = JobKind.ITEM_ATTRIBUTE_AFFINITY

GENERATED = datetime(2026, 11, 23, 5, 0, 0, tzinfo=UTC)


def test_record_has_every_specified_attribute_in_dynamodb_wire_format() -> None:
    # Given a parsed line with scores and a 30-day route
    ctx = RecordContext.for_job("home", "home-users-abc", GENERATED, ttl_days=30)
    line = OutLine("4638", ["63992", "115149"], ["0.0152238", "0.0069081"])
    # When it becomes a record
    item = orjson.loads(record_item(line, ctx.encoded()))
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
    assert "scores" not in orjson.loads(record_item(OutLine("105", ["106"], None), ctx.encoded()))


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


def test_segment_records_one_per_user_with_rank_and_a_queryable_sort_key() -> None:
    # Given an item-affinity line and an attribute-affinity line
    ctx = RecordContext.for_job("segments", "seg-job", GENERATED, ttl_days=30).encoded()
    by_item = parse_segment_line(b'{"input": {"itemId": "105"}, "output": {"usersList": ["u1", "u2"]}}', IA)
    expression = 'ITEMS.genres = "Comedy"'
    by_attribute = parse_segment_line(
        orjson.dumps({"itemAttributes": expression, "output": {"recommendedUsers": ["u2"]}}), IAA
    )
    assert isinstance(by_item, SegmentLine) and isinstance(by_attribute, SegmentLine)
    # When they become records
    items = list(segment_records(by_item, ctx, by_attribute=False))
    attrs = list(segment_records(by_attribute, ctx, by_attribute=True))
    # Then each (user, segment) is one item: pk user, sk route#segment key, rank 1-based
    assert [key for key, _ in items] == [("u1", "segments#105"), ("u2", "segments#105")]
    second = orjson.loads(items[1][1])
    assert second == {
        "pk": {"S": "u2"},
        "sk": {"S": "segments#105"},
        "segment": {"S": "105"},
        "rank": {"N": "2"},
        "route": {"S": "segments"},
        "jobName": {"S": "seg-job"},
        "generatedAt": {"S": "2026-11-23T05:00:00Z"},
        "expiresAt": {"N": str(int(datetime(2026, 12, 23, 5, 0, tzinfo=UTC).timestamp()))},
    }
    # and an expression's key is a stable short hash, the expression itself is kept
    ((key, item),) = attrs
    assert key == ("u2", "segments#" + segment_key(expression, True))
    assert segment_key(expression, True) == segment_key(expression, True) != segment_key("x", True)
    assert len(segment_key(expression, True)) <= 24 and orjson.loads(item)["segment"] == {"S": expression}


def test_a_segment_line_of_100k_users_becomes_100k_records_in_rank_order() -> None:
    ctx = RecordContext.for_job("segments", "j", GENERATED, ttl_days=1).encoded()
    users = [f"user-{n}" for n in range(100_000)]
    line = parse_segment_line(orjson.dumps({"input": {"itemId": "i"}, "output": {"usersList": users}}), IA)
    assert isinstance(line, SegmentLine)
    records = segment_records(line, ctx, by_attribute=False)
    keys, last = [], b""
    for key, last in records:  # noqa: B007 - the last record is checked below
        keys.append(key)
    assert keys == [(user, "segments#i") for user in users]
    assert orjson.loads(last)["rank"] == {"N": "100000"} and orjson.loads(last)["pk"] == {"S": "user-99999"}


def test_every_chunk_count_is_added_up_in_a_job_attribute() -> None:
    # The counts a chunk reports, the job store's attributes and the Job model agree by construction
    from batchrecs.jobs.model import Job
    from batchrecs.jobs.progress import JOB_COUNTERS, ChunkCounts

    assert set(ChunkCounts().to_json()) == set(JOB_COUNTERS)
    assert set(JOB_COUNTERS.values()) <= set(Job.model_fields)
