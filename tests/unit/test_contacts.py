"""Staging contacts for SES: address lookups in bounded batches, users without an address counted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
import pytest
from batchrecs.sinks.ses.contacts import (
    LOOKUP_BATCH,
    ContactImporter,
    ContactStager,
    IdAddressBook,
    is_address,
    staged_tail,
)
from batchrecs.sinks.ses.ports import ImportStatus


class Directory:
    def __init__(self, known: Mapping[str, str]) -> None:
        self.known = known
        self.calls: list[int] = []

    def addresses(self, user_ids: Sequence[str]) -> Mapping[str, str]:
        self.calls.append(len(user_ids))
        return {user: self.known[user] for user in user_ids if user in self.known}


class Out:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data


def test_a_segment_of_many_users_is_looked_up_in_batches_and_missing_users_are_reported() -> None:
    # Given 1,050 users of which every 7th has no address
    users = [str(user) for user in range(1050)]
    directory = Directory({user: f"u{user}@example.com" for user in users if int(user) % 7})
    out, missing = Out(), []
    stager = ContactStager(directory, out, missing.append)  # type: ignore[arg-type]
    tail = staged_tail(["news"], {"route": "r", "segments": ["item-1"]})
    # When they are staged one by one
    for user in users:
        stager.add(user, tail)
    stager.flush()
    # Then lookups never exceed one BatchGetItem's 100 keys, and nothing is dropped silently
    assert max(directory.calls) == LOOKUP_BATCH and sum(directory.calls) == 1050
    assert missing == [user for user in users if int(user) % 7 == 0]
    rows = [orjson.loads(line) for line in out.data.splitlines()]
    assert stager.counts.contacts == len(rows) == 1050 - len(missing)
    assert stager.counts.missing == len(missing)
    assert rows[0] == {
        "emailAddress": "u1@example.com",
        "topics": ["news"],
        "attributes": {"route": "r", "segments": ["item-1"]},
    }


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ana@example.com", True),
        ("first.last+tag@mail.example.org", True),
        ("4638", False),
        ("ana@localhost", False),
        ("@example.com", False),
        ("ana example@example.com", False),
    ],
)
def test_a_user_id_is_an_address_only_when_it_looks_like_one(value: str, ok: bool) -> None:
    assert is_address(value) is ok
    assert (value in IdAddressBook().addresses([value])) is ok


class Lists:
    def __init__(self, statuses: dict[str, ImportStatus]) -> None:
        self.statuses = statuses

    def import_status(self, job_id: str) -> ImportStatus:
        return self.statuses[job_id]


def test_import_counts_wait_for_every_job_and_name_the_ones_that_did_not_complete() -> None:
    running = {"a": ImportStatus("COMPLETED", 10, 1), "b": ImportStatus("PROCESSING", 3, 0)}
    assert ContactImporter(None, Lists(running)).poll(["a", "b"]) is None  # type: ignore[arg-type]
    ended = {
        "a": ImportStatus("COMPLETED", 10, 1),
        "b": ImportStatus("FAILED", 0, 0, "cannot read file"),
        "c": ImportStatus("CANCELLED", 2, 0),
    }
    assert ContactImporter(None, Lists(ended)).poll(["a", "b", "c"]) == {  # type: ignore[arg-type]
        "contactsImported": 12,
        "contactsFailed": 1,
        "importJobsFailed": 2,
        "failure": "b: cannot read file; c: CANCELLED; 1 contacts failed to import",
    }


def test_contacts_that_failed_to_import_fail_the_export_naming_ses_failed_records() -> None:
    # Before, 3 failed contacts of a completed job left the export EXPORTED with no alert
    ended = {"a": ImportStatus("COMPLETED", 7, 3, None, "https://ses.example/failed/a.csv")}
    result = ContactImporter(None, Lists(ended)).poll(["a"])  # type: ignore[arg-type]
    assert result is not None and result["contactsFailed"] == 3
    assert result["failedRecords"] == ["https://ses.example/failed/a.csv"]
    assert (
        result["failure"] == "3 contacts failed to import (failed records: https://ses.example/failed/a.csv)"
    )
