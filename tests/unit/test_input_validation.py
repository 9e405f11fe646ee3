"""Every input-line rule, good and bad, with the line number and what was expected/found."""

from __future__ import annotations

import orjson
import pytest
from batchrecs.formats.input_lines import Problem, ValidLine, validate_value
from batchrecs.routes.config import JobKind

UP = JobKind.USER_PERSONALIZATION


def _problems(value: object, kind: JobKind, line: int = 7) -> list[Problem]:
    checked = validate_value(line, value, kind)
    assert isinstance(checked, list), f"expected problems, got {checked!r}"
    return checked


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (JobKind.USER_PERSONALIZATION, {"userId": "4638"}),
        (JobKind.POPULARITY, {"userId": "12"}),
        (JobKind.RELATED_ITEMS, {"itemId": "105"}),
        (JobKind.PERSONALIZED_RANKING, {"userId": "891", "itemList": ["27", "886", "101"]}),
        (JobKind.ITEM_AFFINITY, {"itemId": "105"}),
        (
            JobKind.ITEM_ATTRIBUTE_AFFINITY,
            {"itemAttributes": 'ITEMS.genres = "Comedy" AND ITEMS.audience = "teen"'},
        ),
        (JobKind.USER_PERSONALIZATION, {"userId": "1", "filterValues": {"GENRES": '"horror","comedy"'}}),
        (JobKind.USER_PERSONALIZATION, {"userId": "x" * 256}),
        (JobKind.PERSONALIZED_RANKING, {"userId": "1", "itemList": [str(i) for i in range(500)]}),
    ],
)
def test_valid_lines_are_accepted_and_made_canonical(kind: JobKind, value: dict) -> None:
    # Given a line of the documented shape, When validated
    checked = validate_value(3, value, kind)
    # Then it is valid, keyed by the kind's id field, and its canonical form is compact JSON of the same value
    assert isinstance(checked, ValidLine)
    assert checked.line == 3
    assert checked.key == value[kind.key_field]
    assert orjson.loads(checked.canonical) == value
    assert b" :" not in checked.canonical and b"\n" not in checked.canonical


@pytest.mark.parametrize(
    ("kind", "value", "expected", "found"),
    [
        (UP, ["4638"], "a JSON object", "a list of 1 values"),
        (UP, "4638", "a JSON object", "string '4638'"),
        (UP, {}, "userId: a non-empty string of at most 256 characters", "no such field"),
        (UP, {"userId": 4638}, "userId: a non-empty string", "number 4638"),
        (UP, {"userId": ""}, "userId: a non-empty string", "an empty string"),
        (UP, {"userId": "   "}, "userId: a non-empty string", "an empty string"),
        (UP, {"userId": None}, "userId: a non-empty string", "null"),
        (UP, {"userId": "x" * 257}, "userId: a non-empty string", "a string of 257 characters"),
        (JobKind.RELATED_ITEMS, {"filterValues": {}}, "itemId: a non-empty string", "no such field"),
        (JobKind.PERSONALIZED_RANKING, {"userId": "1"}, "itemList: a list of 1 to 500", "no such field"),
        (JobKind.PERSONALIZED_RANKING, {"userId": "1", "itemList": []}, "itemList", "an empty list"),
        (JobKind.PERSONALIZED_RANKING, {"userId": "1", "itemList": "27,886"}, "itemList", "string '27,886'"),
        (
            JobKind.PERSONALIZED_RANKING,
            {"userId": "1", "itemList": ["2", 3]},
            "itemList",
            "item 2 is number 3",
        ),
        (
            JobKind.PERSONALIZED_RANKING,
            {"userId": "1", "itemList": ["a"] * 501},
            "itemList",
            "a list of 501 items",
        ),
        (
            JobKind.ITEM_ATTRIBUTE_AFFINITY,
            {"itemAttributes": "genres = Comedy"},
            'ITEMS.<field> = "<value>"',
            "string 'genres = Comedy'",
        ),
        (
            JobKind.ITEM_ATTRIBUTE_AFFINITY,
            {"itemAttributes": 'ITEMS.genres = "A" OR ITEMS.genres = "B"'},
            "joined by AND",
            "string",
        ),
        (
            JobKind.ITEM_ATTRIBUTE_AFFINITY,
            {"itemAttributes": 'ITEMS.genres IN ("A")'},
            "ITEMS.<field>",
            "string",
        ),
        (UP, {"userId": "1", "filterValues": '"horror"'}, "filterValues: an object", "string"),
        (
            UP,
            {"userId": "1", "filterValues": {"GENRES": ["horror"]}},
            "filterValues",
            "'GENRES' is a list of 1",
        ),
        (
            UP,
            {"userId": "1", "itemId": "2"},
            "only the fields userId, filterValues",
            "unknown field 'itemId'",
        ),
    ],
)
def test_invalid_lines_report_line_expected_and_found(
    kind: JobKind, value: object, expected: str, found: str
) -> None:
    # Given a line that breaks one rule, When validated
    problems = _problems(value, kind, line=7)
    # Then exactly one problem is reported, at that line, saying what was expected and what was found
    assert len(problems) == 1, problems
    assert problems[0].line == 7
    assert expected in problems[0].expected
    assert found in problems[0].found


def test_every_problem_of_a_line_is_reported() -> None:
    problems = _problems({"user": "1", "itemList": [], "extra": 1}, JobKind.PERSONALIZED_RANKING)
    assert sorted(p.found for p in problems) == [
        "an empty list",
        "no such field",
        "unknown field 'extra'",
        "unknown field 'user'",
    ]


def test_attribute_expressions_dedupe_on_normalised_whitespace() -> None:
    a = validate_value(
        1,
        {"itemAttributes": 'ITEMS.genres = "Comedy"  AND ITEMS.genres="Action"'},
        JobKind.ITEM_ATTRIBUTE_AFFINITY,
    )
    b = validate_value(
        2,
        {"itemAttributes": 'ITEMS.genres = "Comedy" AND ITEMS.genres="Action"'},
        JobKind.ITEM_ATTRIBUTE_AFFINITY,
    )
    assert isinstance(a, ValidLine) and isinstance(b, ValidLine)
    assert a.key == b.key


def test_filter_values_are_a_line_problem_on_a_route_without_a_filter() -> None:
    from batchrecs.routes.config import JobKind as Kind
    from batchrecs.submit.validation import validate_upload as validate

    body = b'{"userId": "1"}\n{"userId": "2", "filterValues": {"GENRE": "\\"horror\\""}}\n'
    unfiltered = validate([body], "u.jsonl", Kind.USER_PERSONALIZATION, "reject", filtered=False)
    assert not unfiltered.accepted
    assert [(p.line, p.expected) for p in unfiltered.problems] == [
        (2, "no filterValues: the route has no filterArn")
    ]
    assert validate([body], "u.jsonl", Kind.USER_PERSONALIZATION, "reject", filtered=True).accepted
