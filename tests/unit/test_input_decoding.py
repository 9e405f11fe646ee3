"""Decoding uploads (JSON Lines, array, CSV, gzip, BOM, CRLF) and whole-file validation."""

from __future__ import annotations

import gzip

import orjson
import pytest
from batchrecs.errors import ConfigError
from batchrecs.routes.config import JobKind, Route, parse_routes
from batchrecs.submit.validation import ValidationResult, validate_for_route, validate_upload

from tests.conftest import FIXTURES, SOLUTION_ARNS, chunked

UP = JobKind.USER_PERSONALIZATION


class RecordingWriter:
    """An ObjectWriter that keeps what it was given."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.bytes_written += len(data)

    def close(self) -> None:  # pragma: no cover - not used by validate_upload
        pass

    def abort(self) -> None:  # pragma: no cover
        pass

    @property
    def lines(self) -> list[dict]:
        return [orjson.loads(line) for line in bytes(self.data).splitlines()]


def _validate(
    data: bytes,
    name: str = "users.jsonl",
    kind: JobKind = UP,
    on_invalid: str = "reject",
    chunk: int = 1 << 20,
) -> tuple[ValidationResult, RecordingWriter]:
    writer = RecordingWriter()
    result = validate_upload(chunked(data, chunk), name, kind, on_invalid, writer)  # type: ignore[arg-type]
    return result, writer


USERS = [{"userId": "4638"}, {"userId": "663"}, {"userId": "3384"}]
JSONL = b'{"userId": "4638"}\n{"userId": "663"}\n{"userId": "3384"}\n'


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("users.jsonl", JSONL),
        ("users.jsonl", JSONL.rstrip(b"\n")),
        ("users.jsonl", b"\xef\xbb\xbf" + JSONL),
        ("users.jsonl", JSONL.replace(b"\n", b"\r\n")),
        ("users.jsonl", b"\n\n" + JSONL.replace(b"\n", b"\n   \n")),
        ("users.json", b'[{"userId": "4638"},\n {"userId": "663"}, {"userId": "3384"}]\n'),
        ("users.json", b'\xef\xbb\xbf  [\r\n{"userId":"4638"},{"userId":"663"},\r\n{"userId":"3384"}\r\n]'),
        ("users.csv", b"userId\r\n4638\r\n663\r\n3384\r\n"),
        ("users.txt", b"userId\n4638\n\n663\n3384"),
        ("users.jsonl.gz", gzip.compress(JSONL)),
        ("users.json.gz", gzip.compress(b'[{"userId": "4638"}, {"userId": "663"}, {"userId": "3384"}]')),
        ("users.csv.gz", gzip.compress(b"\xef\xbb\xbfuserId\r\n4638\r\n663\r\n3384\r\n")),
        ("no-extension", gzip.compress(JSONL)),
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_every_accepted_shape_normalises_to_the_same_json_lines(name: str, data: bytes, chunk: int) -> None:
    # Given the same three users in one of the accepted shapes, streamed in chunks of any size
    result, writer = _validate(data, name, chunk=chunk)
    # Then the staged copy is the canonical JSON Lines of those users, and the file is accepted
    assert writer.lines == USERS
    assert bytes(writer.data) == b'{"userId":"4638"}\n{"userId":"663"}\n{"userId":"3384"}\n'
    assert result.accepted
    assert (result.totals.lines, result.totals.valid, result.totals.invalid) == (3, 3, 0)


def test_blank_lines_are_counted_not_reported() -> None:
    result, _ = _validate(b'\n{"userId": "1"}\n\n  \n{"userId": "2"}\n')
    assert (result.totals.blank, result.totals.valid, result.problem_count) == (3, 2, 0)


def test_duplicate_ids_are_dropped_and_counted() -> None:
    result, writer = _validate(b'{"userId": "1"}\n{"userId": "2"}\n{"userId": "1"}\n{"userId": "1"}\n')
    assert writer.lines == [{"userId": "1"}, {"userId": "2"}]
    assert (result.totals.valid, result.totals.duplicates) == (2, 2)
    assert result.accepted


def test_reject_mode_reports_line_numbers_and_stages_nothing_after_the_first_bad_line() -> None:
    # Given a file with bad lines 2 and 4 (line 3 is blank and still counts as a line number)
    data = b'{"userId": "1"}\n{"userId": 2}\n\n{"user": "3"}\n{"userId": "5"}\n'
    # When validated with onInvalidLines=reject
    result, writer = _validate(data)
    # Then it is not accepted and the problems point at lines 2 and 4
    assert not result.accepted
    assert [(p.line, p.found) for p in result.problems] == [
        (2, "number 2"),
        (4, "unknown field 'user'"),
        (4, "no such field"),
    ]
    assert (result.totals.lines, result.totals.valid, result.totals.invalid) == (4, 2, 2)
    assert result.summary() == "2 invalid lines of 4"
    assert writer.lines == []  # a rejected file's lines are never copied


def test_skip_mode_leaves_bad_lines_out_and_counts_them() -> None:
    data = b'{"userId": "1"}\nnot json\n{"userId": "3"}\n'
    result, writer = _validate(data, on_invalid="skip")
    assert result.accepted
    assert writer.lines == [{"userId": "1"}, {"userId": "3"}]
    assert result.totals.invalid == 1
    assert result.problems[0].line == 2
    assert result.problems[0].found.startswith("invalid JSON")


def test_only_the_first_100_problems_are_listed_but_all_are_counted() -> None:
    data = b"".join(b'{"userId": %d}\n' % i for i in range(250)) + b'{"userId": "ok"}\n'
    result, _ = _validate(data, on_invalid="skip")
    assert len(result.problems) == 100
    assert result.problem_count == 250
    assert result.problems[-1].line == 100
    report = result.report(route="home")
    assert (report["problemCount"], report["problemsShown"], report["route"]) == (250, 100, "home")


@pytest.mark.parametrize(
    ("data", "line", "found"),
    [
        (b"", 0, "no lines"),
        (b"\n  \r\n\n", 0, "no lines"),
        (b"[]", 0, "no lines"),
        (b'{"userId": 1}\n', 0, "no valid lines"),
    ],
)
def test_empty_or_all_invalid_file_is_rejected_even_when_skipping(data: bytes, line: int, found: str) -> None:
    result, _ = _validate(data, on_invalid="skip")
    assert not result.accepted
    assert result.file_problem is not None
    assert (result.file_problem.line, result.file_problem.found) == (line, found)


@pytest.mark.parametrize(
    ("kind", "limit", "line"),
    [
        (JobKind.ITEM_AFFINITY, 500, {"itemId": "%d"}),
        (JobKind.ITEM_ATTRIBUTE_AFFINITY, 10, {"itemAttributes": 'ITEMS.genre = "g%d"'}),
    ],
)
def test_segment_line_limits(kind: JobKind, limit: int, line: dict) -> None:
    template = orjson.dumps(line)
    at_limit = b"\n".join(template.replace(b"%d", str(i).encode()) for i in range(limit))
    result, _ = _validate(at_limit, kind=kind)
    assert result.accepted and result.totals.valid == limit
    over = at_limit + b"\n" + template.replace(b"%d", b"extra")
    result, _ = _validate(over, kind=kind, on_invalid="skip")
    assert not result.accepted
    assert result.file_problem is not None
    assert result.file_problem.line == limit + 1
    assert result.file_problem.expected == f"at most {limit} lines for {kind.value}"


def test_staged_size_limit_rejects_the_file() -> None:
    writer = RecordingWriter()
    result = validate_upload(iter([JSONL]), "u.jsonl", UP, "reject", writer, max_bytes=30)
    assert not result.accepted
    assert result.file_problem is not None and "at most 30 bytes" in result.file_problem.expected


@pytest.mark.parametrize(
    ("name", "data", "line", "expected", "found"),
    [
        ("u.json", b'[{"userId": "1"},\n{"userId": "2"\n', 2, "a JSON value", "invalid JSON"),
        ("u.json", b'[{"userId": "1"}\n{"userId": "2"}]', 2, "','", "'{"),
        ("u.json", b'[{"userId": "1"}] trailing', 1, "end of file after the JSON array", "more content"),
        ("u.json", b'[{"userId": "1"},', 1, "an array element", "end of file"),
        ("u.csv", b"userId,colour\n1,red\n", 1, "a CSV header naming userId", "unknown column 'colour'"),
        ("u.csv", b"itemId\n1\n", 1, "a CSV header naming userId", "unknown column 'itemId'"),
        ("u.jsonl.gz", gzip.compress(JSONL)[:-12], 0, "a complete gzip stream", "corrupt gzip"),
    ],
)
def test_unreadable_files_are_rejected_with_a_file_problem(
    name: str, data: bytes, line: int, expected: str, found: str
) -> None:
    result, _ = _validate(data, name, on_invalid="skip", chunk=5)
    assert not result.accepted
    assert result.file_problem is not None
    assert result.file_problem.line == line
    assert expected in result.file_problem.expected
    assert found in result.file_problem.found


def test_csv_rows_with_wrong_cell_count_and_ranking_item_lists() -> None:
    data = b'userId,itemList,filterValues.GENRES\n1,27|886|101,\n2,"[""5"", ""6""]",comedy\n3\n'
    result, writer = _validate(data, "ranking.csv", JobKind.PERSONALIZED_RANKING, on_invalid="skip")
    assert writer.lines == [
        {"userId": "1", "itemList": ["27", "886", "101"]},
        {"userId": "2", "itemList": ["5", "6"], "filterValues": {"GENRES": "comedy"}},
    ]
    assert [(p.line, p.expected, p.found) for p in result.problems] == [
        (4, "3 comma-separated values", "1 values")
    ]


def test_array_element_line_numbers_are_where_each_element_starts() -> None:
    data = b'[\n  {"userId": "1"},\n  {"userId": 2},\n\n  {"userId": "3", "x": 1}\n]\n'
    result, _ = _validate(data, "u.json", chunk=3)
    assert [p.line for p in result.problems] == [3, 5]


def test_invalid_utf8_line_is_reported_not_fatal() -> None:
    result, writer = _validate(b'{"userId": "1"}\n{"userId": "\xff"}\n', on_invalid="skip")
    assert writer.lines == [{"userId": "1"}]
    assert result.problems[0].line == 2


def test_seed_examples_validate_for_their_kind() -> None:
    for kind, stem in [
        (JobKind.USER_PERSONALIZATION, "user_personalization"),
        (JobKind.POPULARITY, "popularity"),
        (JobKind.PERSONALIZED_RANKING, "personalized_ranking"),
        (JobKind.RELATED_ITEMS, "related_items"),
        (JobKind.ITEM_AFFINITY, "item_affinity"),
        (JobKind.ITEM_ATTRIBUTE_AFFINITY, "item_attribute_affinity"),
    ]:
        data = (FIXTURES / f"seed002_{stem}.in.jsonl").read_bytes()
        result, _ = _validate(data, kind=kind)
        assert result.accepted, (stem, result.problems)
        assert result.totals.valid == 3


@pytest.mark.parametrize("header", ["USER_ID", "user_id", "UserId", "userid", " userId "])
def test_csv_headers_name_the_field_in_any_case_with_or_without_underscores(header: str) -> None:
    # the seed-004 pipeline's files (Personalize's dataset columns) need no Glue step to be read
    result, _ = _validate(f"{header}\n42\n7\n".encode(), "users.csv")
    assert result.accepted and result.totals.valid == 2


def test_an_interactions_csv_on_a_user_route_becomes_its_distinct_users_counted() -> None:
    body = b"USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE\n1,100,1700000000,click\n2,101,1700000001,buy\n1,102,1700000002,click\n"
    result, staged = _validate(body, "interactions.csv")
    assert result.accepted
    assert (result.totals.valid, result.totals.duplicates) == (2, 1)  # user 1 twice: counted, reported
    assert bytes(staged.data) == b'{"userId":"1"}\n{"userId":"2"}\n'  # its users only


def test_an_unknown_column_of_a_file_that_is_not_interactions_is_still_refused() -> None:
    result, _ = _validate(b"USER_ID,COLOR\n1,red\n", "users.csv")
    assert not result.accepted and result.file_problem is not None
    assert result.file_problem.found == "unknown column 'COLOR'"


def _columns_route(columns: str, kind: str = "personalized-ranking") -> Route:
    text = (
        f"routes:\n  r:\n    kind: {kind}\n    solutionVersionArn: {SOLUTION_ARNS['USER_PERSONALIZATION_SOLUTION_VERSION_ARN']}\n"
        f"    columns: {columns}\n    destination: {{type: dynamodb}}\n"
    )
    return parse_routes(text, {}).get("r")


def test_a_routes_columns_name_its_own_csv_headers_in_any_case() -> None:
    # Given a route whose files come with the data team's headers (the seed-004 Glue step's mapping)
    route = _columns_route("{userId: customer_ref, itemList: Candidates}")
    body = b"CUSTOMER_REF,candidates\nc-1,10|11\nc-2,12\n"
    writer = RecordingWriter()
    # When a CSV with those headers is validated as submit does it
    result = validate_for_route(iter([body]), "users.csv", route, writer)
    # Then each header is the field it names, and the staged copy is Personalize's JSON Lines
    assert result.accepted, result.problems
    assert bytes(writer.data) == (
        b'{"userId":"c-1","itemList":["10","11"]}\n{"userId":"c-2","itemList":["12"]}\n'
    )


def test_a_csv_without_the_routes_column_says_which_header_it_needs() -> None:
    route = _columns_route("{userId: customer_ref}", kind="user-personalization")
    result = validate_for_route(iter([b"email\nx@example.com\n"]), "users.csv", route)
    assert not result.accepted and result.file_problem is not None
    assert result.file_problem.expected.startswith("a CSV header naming customer_ref")
    assert result.file_problem.found == "unknown column 'email'"
    missing = validate_for_route(iter([b"filterValues.GENRE\nx\n"]), "users.csv", route)
    assert missing.file_problem is not None and missing.file_problem.found == "no column 'customer_ref'"


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("{itemId: ref}", "'itemId' is not an input field of personalized-ranking"),
        ("{userId: 'a,b'}", "is not a CSV header"),
        ("{userId: ref, itemList: REF}", "two fields name the same header"),
    ],
)
def test_a_routes_columns_are_checked_at_load(columns: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _columns_route(columns)
