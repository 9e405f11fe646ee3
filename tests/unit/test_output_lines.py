from __future__ import annotations

import orjson
import pytest
from batchrecs.formats.output_lines import OutLine, SegmentLine, parse_out_line, parse_segment_line
from batchrecs.routes.config import JobKind

from tests.conftest import FIXTURES

UP = JobKind.USER_PERSONALIZATION


def _lines(name: str) -> list[bytes]:
    return (FIXTURES / name).read_bytes().splitlines()


def test_seed_user_personalization_output_keeps_rank_order_and_scores() -> None:
    parsed = [parse_out_line(line, UP) for line in _lines("seed002_user_personalization.out.jsonl")]
    assert all(isinstance(p, OutLine) for p in parsed)
    first = parsed[0]
    assert isinstance(first, OutLine)
    assert first.key == "4638"
    assert first.items[:3] == ["63992", "115149", "110102"]
    assert first.scores is not None and first.scores[:2] == ["0.0152238", "0.0069081"]
    assert len(first.items) == len(first.scores) == 25


@pytest.mark.parametrize(
    ("fixture", "kind", "key", "items", "has_scores"),
    [
        ("seed002_popularity.out.jsonl", JobKind.POPULARITY, "12", ["105", "106", "441"], False),
        ("seed002_related_items.out.jsonl", JobKind.RELATED_ITEMS, "105", ["106", "107", "49"], False),
        (
            "seed002_personalized_ranking.out.jsonl",
            JobKind.PERSONALIZED_RANKING,
            "891",
            ["27", "101", "886"],
            True,
        ),
        ("seed002_item_affinity.out.jsonl", JobKind.ITEM_AFFINITY, "105", ["106", "107", "49"], False),
        (
            "seed002_item_attribute_affinity.out.jsonl",
            JobKind.ITEM_ATTRIBUTE_AFFINITY,
            'ITEMS.genres = "Comedy" AND ITEMS.genres = "Action"',
            ["25", "78", "108"],
            False,
        ),
    ],
)
def test_seed_outputs_of_every_kind_parse(
    fixture: str, kind: JobKind, key: str, items: list, has_scores: bool
) -> None:
    parsed = parse_out_line(_lines(fixture)[0], kind)
    assert isinstance(parsed, OutLine)
    assert (parsed.key, parsed.items, parsed.scores is not None) == (key, items, has_scores)


def test_invalid_json_lines_of_the_older_guide_are_reported_not_raised() -> None:
    # Given the older guide's examples ("output": {...}, {"scores": [...]}), which are not JSON
    lines = _lines("seed000_user_personalization.out.jsonl")
    # When parsed, Then each gives a reason instead of a record or an exception
    assert [parse_out_line(line, UP) for line in lines] == ["not valid JSON"] * 3


def test_segment_output_accepts_users_list_as_real_jobs_write_it() -> None:
    parsed = parse_out_line(
        b'{"input": {"itemId": "1"}, "output": {"usersList": ["7", "8"]}, "error": null}',
        JobKind.ITEM_AFFINITY,
    )
    assert parsed == OutLine("1", ["7", "8"], None)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            b'{"input": {"userId": "1"}, "output": null, "error": "User not found"}',
            "Personalize error: User not found",
        ),
        (b"[1, 2]", "not a JSON object"),
        (b'{"input": {}, "output": {"recommendedItems": []}}', "no userId in input"),
        (b'{"input": {"userId": 5}, "output": {"recommendedItems": []}}', "no userId in input"),
        (b'{"input": {"userId": "1"}}', "no output object"),
        (
            b'{"input": {"userId": "1"}, "output": {"recommendedItems": [1, 2]}}',
            "output.recommendedItems is not a list of strings",
        ),
        (
            b'{"input": {"userId": "1"}, "output": {"recommendedItems": ["a"], "scores": ["x"]}}',
            "output.scores is not a list of numbers",
        ),
        (
            b'{"input": {"userId": "1"}, "output": {"recommendedItems": ["a", "b"], "scores": [0.5]}}',
            "output.scores has 1 values for 2 items",
        ),
        (
            b'{"input": {"userId": "1"}, "output": {"recommendedItems": ["a"], "scores": [true]}}',
            "output.scores is not a list of numbers",
        ),
    ],
)
def test_unusable_lines_say_why(line: bytes, reason: str) -> None:
    assert parse_out_line(line, UP) == reason


def test_an_empty_recommendation_list_is_a_valid_record() -> None:
    assert parse_out_line(
        b'{"input": {"userId": "1"}, "output": {"recommendedItems": []}, "error": null}', UP
    ) == (OutLine("1", [], None))


@pytest.mark.parametrize(
    ("scores_json", "texts"),
    [
        (b"[0.10, 1.2E-5, 3]", ["0.10", "1.2E-5", "3"]),  # exactly as written, not float -> repr
        (b"[ 0.5 ,\t0.25 ]", ["0.5", "0.25"]),
        (b"[0.0123,9.8E-4]", ["0.0123", "9.8E-4"]),  # compact, as Personalize writes it
        (b"[]", []),
    ],
)
def test_scores_keep_their_original_text(scores_json: bytes, texts: list[str]) -> None:
    items = b", ".join(b'"i%d"' % n for n in range(len(texts)))
    line = b'{"input": {"userId": "u"}, "output": {"recommendedItems": [%s], "scores": %s}}' % (
        items,
        scores_json,
    )
    parsed = parse_out_line(line, UP)
    assert isinstance(parsed, OutLine) and parsed.scores == texts


def test_scores_text_elsewhere_in_the_line_is_never_used() -> None:
    # Given another "scores" array after the output's
    line = (
        b'{"input": {"userId": "u"}, "output": {"recommendedItems": ["a"], "scores": [0.50]}, '
        b'"meta": {"scores": [0.25]}}'
    )
    parsed = parse_out_line(line, UP)
    # Then the scores are the parsed values (their shortest text), never the look-alike
    assert isinstance(parsed, OutLine) and parsed.scores == ["0.5"]


# ------------------------------------------------------------------------------ segment lines

IA = JobKind.ITEM_AFFINITY
IAA = JobKind.ITEM_ATTRIBUTE_AFFINITY


@pytest.mark.parametrize("field", ["usersList", "recommendedUsers"])
def test_segment_lines_accept_both_spellings_and_keep_rank_order(field: str) -> None:
    line = b'{"input": {"itemId": "105"}, "output": {"%s": ["106", "107", "49"]}, "error": null}' % (
        field.encode()
    )
    parsed = parse_segment_line(line, IA)
    assert isinstance(parsed, SegmentLine)
    assert (parsed.segment, parsed.count, list(parsed.users())) == ("105", 3, ["106", "107", "49"])


@pytest.mark.parametrize(
    ("fixture", "kind", "first_segment"),
    [
        ("seed002_item_affinity.out.jsonl", IA, "105"),
        (
            "seed002_item_attribute_affinity.out.jsonl",
            IAA,
            'ITEMS.genres = "Comedy" AND ITEMS.genres = "Action"',
        ),
    ],
)
def test_documented_segment_outputs_parse(fixture: str, kind: JobKind, first_segment: str) -> None:
    parsed = [parse_segment_line(line, kind) for line in _lines(fixture)]
    assert all(isinstance(line, SegmentLine) for line in parsed)
    first = parsed[0]
    assert isinstance(first, SegmentLine) and first.segment == first_segment and first.count == 3


def test_segment_users_with_escapes_and_an_empty_list() -> None:
    line = b'{"input": {"itemId": "i"}, "output": {"usersList": ["a\\"b", "caf\\u00e9", " x , ] "]}}'
    parsed = parse_segment_line(line, IA)
    assert isinstance(parsed, SegmentLine) and list(parsed.users()) == ['a"b', "café", " x , ] "]
    empty = parse_segment_line(b'{"input": {"itemId": "i"}, "output": {"usersList": [ ]}}', IA)
    assert isinstance(empty, SegmentLine) and (empty.count, list(empty.users())) == (0, [])


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            b'{"input": {"itemId": "i"}, "output": {"usersList": ["a", 7]}}',
            "output.usersList is not a list of strings",
        ),
        (
            b'{"input": {"itemId": "i"}, "output": {"usersList": ["a"]}, "error": "boom"}',
            "Personalize error: boom",
        ),
        (b'{"input": {}, "output": {"usersList": ["a"]}}', "no itemId in input"),
        (b'{"input": {"itemId": "i"}, "output": {"usersList": ["a"]}', "not valid JSON"),
        (b'{"input": {"itemId": "i"}, "output": {}}', "output.usersList is not a list of strings"),
        (b"not json", "not valid JSON"),
    ],
)
def test_unusable_segment_lines_say_why(line: bytes, reason: str) -> None:
    assert parse_segment_line(line, IA) == reason


def test_a_segment_line_with_100k_users_streams_them_in_order() -> None:
    users = [f"user-{n}" for n in range(100_000)]
    line = orjson.dumps({"input": {"itemId": "big"}, "output": {"usersList": users}, "error": None})
    parsed = parse_segment_line(line, IA)
    assert isinstance(parsed, SegmentLine) and parsed.count == 100_000
    assert list(parsed.users()) == users
