"""Opt-outs made while an SES import runs are put back from the preference ledger after it.

An import PUT overwrites a contact with the preferences read before it started (issue #13: an opt-out
made in between came back OPT_IN). The ledger keeps SES's Subscription events; the monitor writes
back every opt-out since its snapshot that the list no longer shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from batchrecs.compose import destinations
from batchrecs.monitor.service import Monitor
from batchrecs.sinks.ses.destination import SesContacts
from batchrecs.sinks.ses.opt_outs import (
    NotASubscriptionEvent,
    OptOutKeeper,
    PreferenceChange,
    latest_changes,
    subscription_change,
)
from batchrecs.sinks.ses.ports import ExistingContact

from tests.fakes import FakeEvents, FakeJobStore
from tests.unit.test_monitor_imports import ROUTES, Importer, _importing, _the


def _event(
    email: str | list[str] = "ann@example.com",
    at: str = "2026-12-01T10:00:05.340Z",
    everything: bool = False,
    **topics: str,
) -> dict[str, Any]:
    """An SES Subscription event record, as SES publishes it (statuses spelled OptIn / OptOut)."""
    return {
        "eventType": "Subscription",
        "mail": {"destination": email if isinstance(email, list) else [email]},
        "subscription": {
            "contactList": "list",
            "timestamp": at,
            "source": "UnsubscribeHeader",
            "newTopicPreferences": {
                "unsubscribeAll": everything,
                "topicSubscriptionStatus": [
                    {"topicName": name, "subscriptionStatus": status} for name, status in topics.items()
                ],
            },
        },
    }


def test_a_subscription_event_is_read_as_the_contacts_new_preferences() -> None:
    change = subscription_change(_event(weekly="OptOut", monthly="OptIn"))
    assert change == PreferenceChange(
        "list", "ann@example.com", "2026-12-01T10:00:05Z", False, {"weekly": "OPT_OUT", "monthly": "OPT_IN"}
    )
    assert change.opted_out_topics == {"weekly"}


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({**_event(), "eventType": "Bounce"}, "is not Subscription"),
        (_event(email=["a@example.com", "b@example.com"]), "2 recipients, not one"),
        (_event(weekly="Maybe"), "is not OptIn or OptOut"),
        (_event(at="yesterday"), "is not ISO 8601"),
    ],
)
def test_an_event_that_names_no_one_contact_change_is_refused(event: dict[str, Any], reason: str) -> None:
    with pytest.raises(NotASubscriptionEvent, match=reason):
        subscription_change(event)


def _change(
    at: str, everything: bool = False, email: str = "ann@example.com", **topics: str
) -> PreferenceChange:
    return PreferenceChange("list", email, at, everything, topics)


def test_the_latest_change_of_a_contact_wins_and_a_tie_keeps_the_opt_out() -> None:
    out, back_in = (
        _change("2026-12-01T10:00:00Z", weekly="OPT_OUT"),
        _change("2026-12-01T10:00:09Z", weekly="OPT_IN"),
    )
    assert latest_changes([back_in, out]) == {"ann@example.com": back_in}
    same_second = _change("2026-12-01T10:00:09Z", weekly="OPT_OUT")
    assert latest_changes([same_second, back_in])["ann@example.com"] == same_second
    assert latest_changes([back_in, same_second])["ann@example.com"] == same_second
    other = _change("2026-12-01T10:00:00Z", email="Bob@Example.com", weekly="OPT_OUT")
    assert set(latest_changes([out, other])) == {"ann@example.com", "bob@example.com"}


class Ledger:
    def __init__(self, *changes: PreferenceChange) -> None:
        self.changes = list(changes)
        self.asked: list[tuple[str, str]] = []

    def record(self, change: PreferenceChange) -> None:
        self.changes.append(change)

    def changes_since(self, contact_list: str, since: str) -> Iterator[PreferenceChange]:
        self.asked.append((contact_list, since))
        return iter([c for c in self.changes if c.contact_list == contact_list and c.at >= since])


class Lists:
    """A contact list as SES keeps it: what the import wrote, unless an update came later."""

    def __init__(self, **contacts: ExistingContact) -> None:
        self.contacts = {c.email: c for c in contacts.values()}
        self.updates: list[tuple[str, bool, dict[str, str], str | None]] = []

    def contact(self, contact_list: str, email: str) -> ExistingContact | None:
        return self.contacts.get(email)

    def update_preferences(
        self, contact_list: str, contact: ExistingContact, unsubscribe_all: bool, topics: Mapping[str, str]
    ) -> None:
        self.updates.append((contact.email, unsubscribe_all, dict(topics), contact.attributes))
        self.contacts[contact.email] = ExistingContact(
            contact.email, unsubscribe_all, dict(topics), contact.attributes
        )


def _imported(email: str, **topics: str) -> ExistingContact:
    return ExistingContact(email, False, topics, attributes='{"jobName": "w-1"}')


def test_opt_outs_an_import_overwrote_are_written_back_with_the_rest_of_the_contact() -> None:
    # Given three contacts the import wrote OPT_IN, two of whom opted out after the snapshot
    lists = Lists(
        ann=_imported("ann@example.com", weekly="OPT_IN", monthly="OPT_IN"),
        bob=_imported("bob@example.com", weekly="OPT_IN"),
        cat=_imported("cat@example.com", weekly="OPT_IN"),
    )
    ledger = Ledger(
        _change("2026-12-01T10:00:05Z", weekly="OPT_OUT", monthly="OPT_IN"),  # ann: one topic
        _change("2026-12-01T10:00:06Z", True, email="bob@example.com", weekly="OPT_IN"),  # bob: everything
        _change("2026-12-01T09:00:00Z", email="cat@example.com", weekly="OPT_OUT"),  # before the snapshot
    )
    keeper = OptOutKeeper(ledger, lists)  # type: ignore[arg-type]
    # When the keeper restores since the snapshot
    assert keeper.restore("list", "2026-12-01T10:00:00Z") == 2
    # Then ann's topic and bob's unsubscribe-all are back, every other preference and the attributes kept
    assert lists.updates == [
        ("ann@example.com", False, {"weekly": "OPT_OUT", "monthly": "OPT_IN"}, '{"jobName": "w-1"}'),
        ("bob@example.com", True, {"weekly": "OPT_IN"}, '{"jobName": "w-1"}'),
    ]
    assert ledger.asked == [("list", "2026-12-01T10:00:00Z")]
    # And a second pass changes nothing
    assert keeper.restore("list", "2026-12-01T10:00:00Z") == 0 and len(lists.updates) == 2


def test_a_later_opt_in_an_erased_contact_and_a_kept_opt_out_need_nothing() -> None:
    lists = Lists(
        ann=_imported("ann@example.com", weekly="OPT_IN"), cat=_imported("cat@example.com", weekly="OPT_OUT")
    )
    ledger = Ledger(
        _change("2026-12-01T10:00:05Z", weekly="OPT_OUT"),
        _change("2026-12-01T10:00:07Z", weekly="OPT_IN"),  # ann subscribed again: her latest choice
        _change("2026-12-01T10:00:05Z", email="gone@example.com", weekly="OPT_OUT"),  # erased since
        _change("2026-12-01T10:00:05Z", email="cat@example.com", weekly="OPT_OUT"),  # the list shows it
    )
    assert OptOutKeeper(ledger, lists).restore("list", "2026-12-01T10:00:00Z") == 0  # type: ignore[arg-type]
    assert lists.updates == []


def test_the_monitor_reads_preferences_after_noting_the_time_and_restores_since_then() -> None:
    # Given an SES export whose imports start on one tick and have ended on the next
    jobs, events = FakeJobStore(_importing()), FakeEvents()
    done = {"contactsImported": 12, "contactsFailed": 0, "importJobsFailed": 0, "failure": None}
    importer = Importer(["a.jsonl"], [done])
    ledger = Ledger(_change("2026-12-01T10:00:05Z", weekly="OPT_OUT"))
    lists = Lists(ann=_imported("ann@example.com", weekly="OPT_IN"))
    times = iter(["2026-12-01T10:00:00Z", "2026-12-01T10:00:01Z", "2026-12-01T10:00:09Z"])
    ses = SesContacts(
        objects=None,  # type: ignore[arg-type]
        importer=importer,  # type: ignore[arg-type]
        address_books=None,  # type: ignore[arg-type]
        clock=lambda: next(times),
        opt_outs=OptOutKeeper(ledger, lists),  # type: ignore[arg-type]
    )
    monitor = Monitor(jobs, None, events, routes=ROUTES, destination_for=destinations(ses=lambda: ses))  # type: ignore[arg-type]
    # When two ticks run
    monitor.tick()
    assert _the(jobs).preferencesReadAt == "2026-12-01T10:00:00Z" and not ledger.asked
    monitor.tick()
    # Then the opt-out made after the preferences were read is back, and counted on the export
    assert ledger.asked == [("list", "2026-12-01T10:00:00Z")]
    assert lists.contacts["ann@example.com"].topics == {"weekly": "OPT_OUT"}
    job = _the(jobs)
    assert job.status == "EXPORTED" and job.contactImport is not None
    assert job.contactImport["optOutsRestored"] == 1
    assert events.published[0][1]["contacts"]["optOutsRestored"] == 1
