"""Bad uploads, as an adversarial review tried them: each ends in a clear outcome (a line problem or a
file problem naming what was found), in bounded memory, and never as an exception that would leave the
job RECEIVED while the submit function retries."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tracemalloc
import zipfile
from collections.abc import Iterator

import orjson
import pytest
from batchrecs.formats.input_files import SERVICE_LIMITS, ReadLimits
from batchrecs.routes.config import JobKind
from batchrecs.submit.validation import ValidationResult, validate_upload

from tests.conftest import chunked
from tests.unit.test_input_decoding import RecordingWriter

UP = JobKind.USER_PERSONALIZATION


class Staged(RecordingWriter):
    @property
    def ids(self) -> list[str]:
        return [line["userId"] for line in self.lines]


def _validate(
    data: bytes | Iterator[bytes],
    name: str = "u.jsonl",
    kind: JobKind = UP,
    on_invalid: str = "skip",
    limits: ReadLimits = SERVICE_LIMITS,
    chunk: int = 1 << 16,
) -> tuple[ValidationResult, Staged]:
    staged = Staged()
    chunks = chunked(data, chunk) if isinstance(data, bytes) else data
    result = validate_upload(chunks, name, kind, on_invalid, staged, limits=limits)  # type: ignore[arg-type]
    return result, staged


def _file_problem(result: ValidationResult) -> tuple[int, str, str]:
    assert not result.accepted
    assert result.file_problem is not None
    return result.file_problem.line, result.file_problem.expected, result.file_problem.found


def _line_problems(result: ValidationResult) -> list[tuple[int, str]]:
    return [(problem.line, problem.found) for problem in result.problems]


# --------------------------------------------------------------------------- crashes that left jobs RECEIVED


def test_deeply_nested_arrays_in_an_array_file_are_a_file_problem() -> None:
    result, _ = _validate(b"[" * 100_000, "u.json")
    line, _, found = _file_problem(result)
    assert (line, found) == (1, "arrays or objects nested too deeply")


def test_a_5000_digit_number_in_an_array_file_is_a_line_problem() -> None:
    result, staged = _validate(
        b'[{"userId": "1"},\n{"userId": ' + b"9" * 5000 + b'},\n{"userId": "3"}]', "u.json"
    )
    assert _line_problems(result) == [(2, "a number of 5,000 digits")]
    assert staged.ids == ["1", "3"]


@pytest.mark.parametrize(
    ("name", "data", "found"),
    [
        ("u.json", b'[{"userId": "\\ud800"}, {"userId": "2"}]', "U+D800"),  # the json module keeps it
        ("u.jsonl", b'{"userId": "\\ud800"}\n{"userId": "2"}\n', "no low surrogate"),  # orjson refuses it
        ("u.json", b'[{"userId": "1", "filterValues": {"G": "\\udfff"}}, {"userId": "2"}]', "lone surrogate"),
    ],
)
def test_a_lone_surrogate_is_a_line_problem(name: str, data: bytes, found: str) -> None:
    result, staged = _validate(data, name)
    [(line, message)] = _line_problems(result)
    assert line == 1 and found in message
    assert staged.ids == ["2"]


def test_a_csv_cell_over_128_kib_is_a_problem_of_its_row() -> None:
    result, staged = _validate(b"userId\n" + b"x" * 200_000 + b"\n2\n", "u.csv")
    [(line, found)] = _line_problems(result)
    assert line == 2 and "field larger than field limit" in found
    assert staged.ids == ["2"]


def test_any_unexpected_error_while_reading_is_a_file_problem_not_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import batchrecs.submit.validation as validation

    def broken(*args: object) -> object:
        raise KeyError("a bug")

    monkeypatch.setattr(validation, "validate_value", broken)
    # a line that is not a plain id line, so it is checked on its own (plain ones are read in blocks)
    line, expected, found = _file_problem(_validate(b'{"userId": "\\u00e9"}\n')[0])
    assert (line, expected, found) == (1, "a file batchrecs can read", "an error (KeyError)")


def test_a_failure_reading_the_upload_itself_is_raised_as_it_was_so_the_submit_is_retried() -> None:
    class SlowDown(Exception):
        pass

    def body() -> Iterator[bytes]:
        yield b'{"userId": "1"}\n'
        raise SlowDown("503 Slow Down")

    with pytest.raises(SlowDown):
        _validate(body())
    with pytest.raises(SlowDown):
        _validate(_gzip_then_fail(SlowDown), "u.jsonl.gz")


def _gzip_then_fail(error: type[Exception]) -> Iterator[bytes]:
    data = gzip.compress(b'{"userId": "1"}\n' * 1000)
    yield data[:20]
    raise error("read timeout")


# --------------------------------------------------------------------------- bounded work


def test_a_gzip_of_newlines_is_read_in_bounded_memory_and_counted_as_blank_lines() -> None:
    data = gzip.compress(b"\n" * (20 << 20) + b'{"userId": "1"}\n')
    tracemalloc.start()
    try:
        result, staged = _validate(data, "u.jsonl.gz", chunk=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.accepted and staged.ids == ["1"]
    assert result.totals.blank == 20 << 20
    assert peak < 8 << 20  # the 20 MB of white space is never held (a chunk of 1 MiB at a time)


def test_leading_blank_lines_keep_line_numbers_right() -> None:
    result, _ = _validate(b"\n \n\t\r\n" + b'{"userId": 1}\n', on_invalid="reject")
    assert [problem.line for problem in result.problems] == [4]
    assert result.totals.blank == 3


def test_decompressed_content_is_capped() -> None:
    data = gzip.compress(b'{"userId": "1"}\n' * 100_000)  # 1.6 MB from ~5 KB
    line, expected, found = _file_problem(
        _validate(data, "u.jsonl.gz", limits=ReadLimits(content_bytes=1 << 20))[0]
    )
    assert (line, expected, found) == (0, "at most 1,048,576 bytes of content (after decompression)", "more")


def test_lines_read_are_capped_duplicates_and_blanks_included() -> None:
    data = b'{"userId": "1"}\n\n' * 1000
    line, expected, _ = _file_problem(_validate(data, limits=ReadLimits(lines=500))[0])
    assert (line, expected) == (501, "at most 500 lines")


def test_a_long_line_is_reported_with_its_length_without_being_held() -> None:
    data = b'{"userId": "1"}\n{"userId": "' + b"x" * (30 << 20) + b'"}\n{"userId": "3"}\n'
    tracemalloc.start()
    try:
        result, staged = _validate(data, chunk=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert _line_problems(result) == [(2, f"a line of {(30 << 20) + 14:,} bytes")]
    assert result.problems[0].expected == "a line of at most 1,048,576 bytes"
    assert staged.ids == ["1", "3"]
    assert peak < 8 << 20


def test_a_long_array_element_is_named_as_such() -> None:
    data = b'[{"userId": "1"},\n {"userId": "' + b"x" * (3 << 20) + b'"}]'
    line, expected, found = _file_problem(_validate(data, "u.json")[0])
    assert (line, expected) == (2, "array elements of at most 1,048,576 bytes")
    assert found == "an element longer than 1,048,576 bytes"


def test_a_long_csv_line_is_a_file_problem() -> None:
    line, expected, _ = _file_problem(_validate(b"userId\n1\n" + b"y" * (2 << 20) + b"\n", "u.csv")[0])
    assert (line, expected) == (3, "a line of at most 1,048,576 bytes")


# --------------------------------------------------------------------------- right data, or a clear no


def test_csv_quoted_newlines_and_commas_stay_inside_their_cell() -> None:
    data = b'userId,filterValues.GENRES\n"u1","a,b"\n"u2\nu3",x\nu4,y\n'
    result, staged = _validate(data, "u.csv")
    assert staged.ids == ["u1", "u4"]  # "u2\nu3" is one id, with a control character: refused
    [(line, found)] = _line_problems(result)
    assert line == 3 and "U+000A" in found


def test_csv_with_an_unclosed_quote_is_reported_where_the_row_starts() -> None:
    result, staged = _validate(b'userId\n1\n"2\n3\n', "u.csv")
    assert staged.ids == ["1"]
    assert _line_problems(result) == [(3, "unexpected end of data")]


def test_a_stray_quote_inside_a_csv_cell_is_a_problem() -> None:
    result, staged = _validate(b'userId,filterValues.G\n"1"x,a\n2,b\n', "u.csv")
    assert staged.ids == ["2"]
    [(line, found)] = _line_problems(result)
    assert line == 2 and "expected after" in found


@pytest.mark.parametrize(
    ("identifier", "found"),
    [
        ("a\u0000b", "U+0000"),
        ("a\tb", "U+0009"),
        ("a\u0085b", "U+0085"),
        ("evil\u202egnp.exe", "U+202E"),
        ("zero\u200bwidth", "U+200B"),
        ("\ufeffbom", "U+FEFF"),
        (" 42", "spaces around it"),
        ("42 ", "spaces around it"),
    ],
)
def test_ids_with_hidden_characters_or_surrounding_spaces_are_refused(identifier: str, found: str) -> None:
    for name, data in [
        ("u.jsonl", orjson.dumps({"userId": identifier}) + b'\n{"userId": "ok"}\n'),
        ("u.csv", b"userId\n" + identifier.encode() + b"\nok\n"),
    ]:
        result, staged = _validate(data, name)
        [(line, message)] = _line_problems(result)
        assert found in message, (name, message)
        assert staged.ids == ["ok"]


def test_an_id_in_an_item_list_is_checked_the_same_way() -> None:
    line = orjson.dumps({"userId": "1", "itemList": ["a", "b\u200b"]})
    result, _ = _validate(line, kind=JobKind.PERSONALIZED_RANKING)
    assert "item 2 is a string with the invisible or control character U+200B" in result.problems[0].found


def test_a_null_line_is_invalid_not_blank() -> None:
    result, _ = _validate(b'{"userId": "1"}\nnull\n')
    assert _line_problems(result) == [(2, "null")]
    assert result.totals.blank == 0


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("u.jsonl", b'{"userId": "1", "userId": "2"}\n'),
        ("u.jsonl", b'{"userId": "1", "filterValues": {"G": "a", "G": "b"}}\n'),
        ("u.json", b'[{"userId": "1", "userId": "2"}]'),
    ],
)
def test_a_field_named_twice_is_a_problem_not_a_silent_choice(name: str, data: bytes) -> None:
    result, _ = _validate(data + b'{"userId": "ok"}\n' if name.endswith("l") else data, name)
    assert result.problem_count == 1
    assert "twice" in result.problems[0].found


def test_colons_inside_values_are_not_taken_for_repeated_fields() -> None:
    result, staged = _validate(b'{"userId": "a:b:c", "filterValues": {"G": "x:y"}}\n')
    assert result.accepted and staged.ids == ["a:b:c"]


def test_attribute_queries_differing_inside_quotes_are_different_queries() -> None:
    data = (
        b'{"itemAttributes": "ITEMS.genres = \\"Sci  Fi\\""}\n'
        b'{"itemAttributes": "ITEMS.genres = \\"Sci Fi\\""}\n'
        b'{"itemAttributes": "ITEMS.genres=\\"Sci Fi\\""}\n'
    )
    result, _ = _validate(data, kind=JobKind.ITEM_ATTRIBUTE_AFFINITY)
    assert (result.totals.valid, result.totals.duplicates) == (2, 1)


def _zip(data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("u.jsonl", data)
    return out.getvalue()


LINES = b'{"userId": "1"}\n{"userId": "2"}\n'


@pytest.mark.parametrize(
    ("name", "data", "found"),
    [
        ("u.jsonl", LINES.decode().encode("utf-16"), "UTF-16 text (little-endian byte-order mark)"),
        ("u.jsonl", LINES.decode().encode("utf-16-be"), "UTF-16 or UTF-32 text (NUL bytes"),
        ("u.jsonl", b"\xfe\xff" + LINES.decode().encode("utf-16-be"), "UTF-16 text (big-endian"),
        ("u.jsonl", LINES.decode().encode("utf-32"), "UTF-32 text (little-endian byte-order mark)"),
        ("u.jsonl.bz2", bz2.compress(LINES), "bzip2-compressed data"),
        ("u.zip", _zip(LINES), "a zip archive"),
        ("u.jsonl.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "zstd-compressed data"),
        ("u.jsonl.xz", lzma.compress(LINES), "xz-compressed data"),
        ("u.jsonl.gz.gz", gzip.compress(gzip.compress(LINES)), "gzip inside gzip"),
        ("u.jsonl.gz", gzip.compress(bz2.compress(LINES)), "bzip2-compressed data inside gzip"),
    ],
)
def test_files_that_are_not_utf8_text_are_named(name: str, data: bytes, found: str) -> None:
    line, expected, message = _file_problem(_validate(data, name, chunk=3)[0])
    assert line == 0 and expected.startswith("UTF-8 text")
    assert message.startswith(found)


def test_cr_only_line_endings_are_named() -> None:
    line, expected, found = _file_problem(_validate(LINES.replace(b"\n", b"\r"))[0])
    assert (line, expected, found) == (
        1,
        "lines ending in LF or CRLF",
        "lines ending in CR only (classic Mac OS)",
    )


def test_crlf_files_still_read() -> None:
    result, staged = _validate(LINES.replace(b"\n", b"\r\n"))
    assert result.accepted and staged.ids == ["1", "2"]


def test_the_normalised_size_is_checked_without_a_staged_copy_too() -> None:
    # batchrecs validate passes no writer: it must still refuse what submit would refuse
    result = validate_upload(
        iter([b'{"userId": "1"}\n{"userId": "2"}\n']), "u.jsonl", UP, "reject", max_bytes=20
    )
    assert result.file_problem is not None
    assert (result.file_problem.expected, result.file_problem.found) == (
        "at most 20 bytes of batch input",
        "30 bytes after normalising",
    )
