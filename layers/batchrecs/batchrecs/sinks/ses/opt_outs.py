"""Opt-outs made while an SES import runs are put back after it.

An import PUTs each contact with the preferences the monitor read before it started (its snapshot):
an import cannot be conditional, so a contact who opts out between the snapshot and the moment SES
writes their record would be subscribed again. Nothing read from the list afterwards can tell, because
the import has overwritten the opt-out. So the changes are kept as they happen, in a ledger:

    recipient unsubscribes (SES's unsubscribe link or header, on an e-mail sent with the stack's
    configuration set) -> SES "Subscription" event -> EventBridge -> ``record_subscription_event``
    -> the preference ledger (one item per change, kept ContactDataRetentionDays)

and once an export's imports have ended, ``OptOutKeeper.restore`` reads the ledger's changes since the
snapshot and, for each contact whose latest change keeps an opt-out (``unsubscribeAll``, or a topic
OPT_OUT) that the list no longer shows, writes it back (UpdateContact, with all of the contact's other
preferences and attributes as they are). A later opt-in by the same contact wins over an earlier
opt-out, as it should.

Opt-outs that reach SES without a Subscription event (your own code calling UpdateContact) are not in
the ledger: send them as an event of the same shape to the default bus, or make them outside an import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from batchrecs.clock import iso
from batchrecs.sinks.ses.ports import ContactLists

OPT_IN, OPT_OUT = "OPT_IN", "OPT_OUT"
_STATUSES = {"OPT_IN": OPT_IN, "OPTIN": OPT_IN, "OPT_OUT": OPT_OUT, "OPTOUT": OPT_OUT}


@dataclass(frozen=True)
class PreferenceChange:
    """A contact's preferences as they were right after a change (SES sends the whole new state)."""

    contact_list: str
    email: str
    at: str  # when the contact changed them (ISO 8601, UTC)
    unsubscribe_all: bool
    topics: Mapping[str, str]  # topic -> OPT_IN | OPT_OUT

    @property
    def opted_out_topics(self) -> set[str]:
        return {topic for topic, status in self.topics.items() if status == OPT_OUT}


class PreferenceLedger(Protocol):
    def record(self, change: PreferenceChange) -> None:
        """Keep ``change`` (recording the same change twice keeps one)."""
        ...

    def changes_since(self, contact_list: str, since: str) -> Iterator[PreferenceChange]:
        """The list's changes made at or after ``since`` (any order)."""
        ...


class NotASubscriptionEvent(ValueError):
    """The event is not one contact's SES Subscription event: nothing can be recorded from it."""


def subscription_change(detail: Mapping[str, Any]) -> PreferenceChange:
    """The change an SES ``Subscription`` event record (EventBridge ``detail``) reports.

    The record names the contact list, the time, and the contact's new preferences; the contact is the
    e-mail's one recipient (list-management e-mails go to one address each)."""
    if detail.get("eventType") != "Subscription" or not isinstance(detail.get("subscription"), dict):
        raise NotASubscriptionEvent(f"eventType {detail.get('eventType')!r} is not Subscription")
    subscription = detail["subscription"]
    recipients = (detail.get("mail") or {}).get("destination") or []
    if len(recipients) != 1 or not isinstance(recipients[0], str):
        raise NotASubscriptionEvent(f"the e-mail has {len(recipients)} recipients, not one")
    new = subscription.get("newTopicPreferences") or {}
    topics = {}
    for preference in new.get("topicSubscriptionStatus") or []:
        status = _STATUSES.get(str(preference.get("subscriptionStatus", "")).upper())
        if status is None or not isinstance(preference.get("topicName"), str):
            raise NotASubscriptionEvent(f"topic preference {preference!r} is not OptIn or OptOut")
        topics[preference["topicName"]] = status
    contact_list, at = subscription.get("contactList"), subscription.get("timestamp")
    if not isinstance(contact_list, str) or not isinstance(at, str):
        raise NotASubscriptionEvent("the subscription record has no contactList or timestamp")
    try:
        moment = iso(datetime.fromisoformat(at))  # SES writes milliseconds; the ledger, whole seconds
    except ValueError:
        raise NotASubscriptionEvent(f"timestamp {at!r} is not ISO 8601") from None
    return PreferenceChange(contact_list, recipients[0], moment, bool(new.get("unsubscribeAll")), topics)


def latest_changes(changes: Iterable[PreferenceChange]) -> dict[str, PreferenceChange]:
    """Each contact's (address, lower case) latest change; of two in one second, the one that opts out
    of more (the ledger keeps whole seconds: when in doubt, an opt-out is kept)."""
    latest: dict[str, PreferenceChange] = {}
    for change in changes:
        key = change.email.lower()
        if key not in latest or (change.at, _outs(change)) > (latest[key].at, _outs(latest[key])):
            latest[key] = change
    return latest


def _outs(change: PreferenceChange) -> int:
    return len(change.opted_out_topics) + change.unsubscribe_all


class OptOutKeeper:
    def __init__(self, ledger: PreferenceLedger, lists: ContactLists) -> None:
        self._ledger = ledger
        self._lists = lists

    def restore(self, contact_list: str, since: str) -> int:
        """Write back every opt-out made since ``since`` that the list no longer shows; how many
        contacts were corrected. Running it again corrects nothing more."""
        restored = 0
        for change in latest_changes(self._ledger.changes_since(contact_list, since)).values():
            if not change.unsubscribe_all and not change.opted_out_topics:
                continue  # the contact's latest change opts in: nothing to keep
            current = self._lists.contact(contact_list, change.email)
            if current is None:
                continue  # deleted since (erased): nothing to put back
            lost_topics = {t for t in change.opted_out_topics if current.topics.get(t) != OPT_OUT}
            lost_all = change.unsubscribe_all and not current.unsubscribe_all
            if not lost_topics and not lost_all:
                continue
            self._lists.update_preferences(
                contact_list,
                current,
                unsubscribe_all=current.unsubscribe_all or change.unsubscribe_all,
                topics={**current.topics, **dict.fromkeys(lost_topics, OPT_OUT)},
            )
            restored += 1
        return restored
