"""Themes from Content Generator (seed 003) on a related-items route: the request asks for them, the
theme and each item's relevance survive the export (with the numbers' precision), and a route's
``minThemeScore`` leaves out (and counts) the items below it."""

from __future__ import annotations

import orjson
import pytest
from batchrecs.errors import ConfigError
from batchrecs.formats.output_lines import OutLine, parse_out_line
from batchrecs.jobs.progress import ChunkCounts, themed
from batchrecs.routes.config import JobKind, parse_routes
from batchrecs.sinks.dynamodb.records import RecordContext, record_item
from batchrecs.submit.request import build_request
from batchrecs.submit.validation import validate_upload

VERSION = "arn:aws:personalize:us-east-1:123456789012:solution/sims/1"
ROUTES = parse_routes(
    f"""
routes:
  themes:
    kind: related-items
    solutionVersionArn: {VERSION}
    themes: {{itemNameField: TITLE, minThemeScore: 0.1}}
    destination: {{type: dynamodb}}
""",
    {},
)
# the seeds' example line (docs: "Batch recommendations with themes from Content Generator")
SEED_LINE = (
    b'{"input":{"itemId":"40"},"output":{"recommendedItems":["36","50"],"theme":"Movies with a strong female lead",'
    b'"itemsThemeRelevanceScores":[0.1999,0.0830]},"error":null}'
)


def test_the_request_asks_for_themes_named_from_the_routes_item_field() -> None:
    request = build_request(ROUTES.get("themes"), "j", "s3://b/in", "s3://b/out/", "arn:aws:iam::1:role/r")
    assert request["batchInferenceJobMode"] == "THEME_GENERATION"
    assert request["themeGenerationConfig"] == {"fieldsForThemeGeneration": {"itemName": "TITLE"}}


def test_a_theme_line_keeps_its_theme_and_relevance_as_written() -> None:
    line = parse_out_line(SEED_LINE, JobKind.RELATED_ITEMS)
    assert line == OutLine("40", ["36", "50"], None, "Movies with a strong female lead", ["0.1999", "0.0830"])
    item = orjson.loads(record_item(line, RecordContext("themes", "j", "2026-12-01T00:00:00Z", 1).encoded()))  # type: ignore[arg-type]
    assert item["theme"] == {"S": "Movies with a strong female lead"}
    assert item["themeScores"] == {"L": [{"N": "0.1999"}, {"N": "0.0830"}]}  # the text, not a float's repr


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (b'"theme":7,"itemsThemeRelevanceScores":[0.1]', "output.theme is not a string"),
        (b'"theme":"t"', "output.itemsThemeRelevanceScores is missing for a theme"),
        (
            b'"theme":"t","itemsThemeRelevanceScores":[0.1,0.2]',
            "output.itemsThemeRelevanceScores has 2 values for 1 items",
        ),
    ],
)
def test_a_broken_theme_line_is_reported_not_half_written(output: bytes, reason: str) -> None:
    line = b'{"input":{"itemId":"1"},"output":{"recommendedItems":["2"],' + output + b'},"error":null}'
    assert parse_out_line(line, JobKind.RELATED_ITEMS) == reason


def test_items_below_the_routes_min_theme_score_are_left_out_and_counted() -> None:
    line = parse_out_line(SEED_LINE, JobKind.RELATED_ITEMS)
    counts = ChunkCounts()
    kept = themed(line, ROUTES.get("themes"), counts)  # type: ignore[arg-type]
    assert (kept.items, kept.theme_scores, counts.below_theme) == (["36"], ["0.1999"], 1)


def test_themes_are_for_related_items_routes_and_at_most_100_input_lines() -> None:
    with pytest.raises(ConfigError, match="themes are generated for related-items routes"):
        parse_routes(
            f"routes:\n  t:\n    kind: user-personalization\n    solutionVersionArn: {VERSION}\n"
            "    themes: {itemNameField: TITLE}\n    destination: {type: dynamodb}\n",
            {},
        )
    body = b"".join(b'{"itemId": "%d"}\n' % i for i in range(101))
    result = validate_upload([body], "items.jsonl", JobKind.RELATED_ITEMS, "reject", max_lines=100)
    assert not result.accepted and result.file_problem is not None
    assert result.file_problem.expected == "at most 100 lines for related-items with themes"
