from __future__ import annotations

import re

import pytest
from batchrecs.jobs.naming import MAX_JOB_NAME, file_stem, job_arn, job_name

PERSONALIZE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")


def test_same_upload_same_name_new_version_new_name() -> None:
    # Given one object key, When its event is delivered twice, Then the name is the same;
    # When the key is uploaded again (new sequencer), Then it is a different job
    first = job_name("home", "input/home/users.jsonl", "0055AED6DCD90281E5")
    assert first == job_name("home", "input/home/users.jsonl", "0055AED6DCD90281E5")
    assert first != job_name("home", "input/home/users.jsonl", "0055AED6DCD90281E6")
    assert first.startswith("home-users-")


@pytest.mark.parametrize(
    "key",
    [
        "input/home/users.jsonl",
        "input/home/Ünïcode spaces & (symbols).csv.gz",
        "input/home/" + "very-long-name-" * 20 + ".json",
        "input/home/.hidden",
        "input/home/---.jsonl",
        "input/home/a/b/c/nested.json",
    ],
)
def test_names_always_fit_personalize_rules(key: str) -> None:
    name = job_name("home", key, "seq")
    assert 1 <= len(name) <= MAX_JOB_NAME
    assert PERSONALIZE_NAME.match(name), name


def test_long_names_keep_the_digest_so_they_stay_unique() -> None:
    long_a = "input/home/" + "x" * 100 + "a.json"
    long_b = "input/home/" + "x" * 100 + "b.json"
    assert job_name("home", long_a, "s") != job_name("home", long_b, "s")


@pytest.mark.parametrize(
    ("key", "stem"),
    [
        ("input/r/users.jsonl.gz", "users"),
        ("input/r/users.csv", "users"),
        ("input/r/a.b.json", "a.b"),
        ("input/r/.json", ".json"),
        ("input/r/data", "data"),
    ],
)
def test_file_stem_drops_accepted_extensions(key: str, stem: str) -> None:
    assert file_stem(key) == stem


def test_job_arn_follows_the_solution_version() -> None:
    sv = "arn:aws:personalize:eu-west-1:123456789012:solution/home/abc"
    assert (
        job_arn(sv, "j1", segment=False)
        == "arn:aws:personalize:eu-west-1:123456789012:batch-inference-job/j1"
    )
    assert (
        job_arn(sv, "j1", segment=True) == "arn:aws:personalize:eu-west-1:123456789012:batch-segment-job/j1"
    )


def test_long_names_inside_derived_keys_are_cut_whole_characters_and_stay_unique() -> None:
    from batchrecs.layout import MAX_NAME_BYTES, fitted

    assert fitted("users") == "users"
    a, b = fitted("é" * 300 + "a"), fitted("é" * 300 + "b")
    assert a != b
    for cut in (a, b):
        assert len(cut.encode()) <= MAX_NAME_BYTES
        assert cut.startswith("é" * 80) and "\ufffd" not in cut


def test_a_dumped_key_never_leaves_the_dump_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from batchrecs_local.session import dump_path

    for key in ("rejected/home/j/../../../../etc/x.report.json", "rejected//./a", "reports/j/ok.json"):
        target = (tmp_path / dump_path(key)).resolve()
        assert target.is_relative_to(tmp_path.resolve()), key
    assert dump_path("reports/j/ok.json") == "reports/j/ok.json"
