"""The SES destination's own ports: what it needs from the user directory and from SES (``batchrecs.aws``
implements them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class AddressBook(Protocol):
    def addresses(self, user_ids: Sequence[str]) -> Mapping[str, str]:
        """The e-mail address of each user id that has one (ids without one are left out)."""
        ...


@dataclass(frozen=True)
class ExistingContact:
    email: str
    unsubscribe_all: bool
    topics: Mapping[str, str]  # topic name -> OPT_IN | OPT_OUT (explicit preferences only)
    attributes: str | None = None  # attributesData (read by ``contact`` only)


@dataclass(frozen=True)
class ImportStatus:
    status: str  # CREATED | PROCESSING | COMPLETED | FAILED | CANCELLED
    processed: int
    failed: int
    failure: str | None = None
    failed_records_url: str | None = None  # SES's file of the records that failed, with their reasons


class ContactLists(Protocol):
    def contacts_page(self, contact_list: str, token: str | None) -> tuple[list[ExistingContact], str | None]:
        """One page of the list's contacts (ListContacts) and the token of the next (None: the last)."""
        ...

    def contact(self, contact_list: str, email: str) -> ExistingContact | None:
        """One contact, with its attributes; None if the list has no such contact."""
        ...

    def update_preferences(
        self, contact_list: str, contact: ExistingContact, unsubscribe_all: bool, topics: Mapping[str, str]
    ) -> None:
        """Set the contact's preferences to exactly these, keeping its attributes."""
        ...

    def topics(self, contact_list: str) -> dict[str, str]:
        """The contact list's topics, each with its DefaultSubscriptionStatus (OPT_IN | OPT_OUT)."""
        ...

    def start_import(self, contact_list: str, s3_url: str) -> str:
        """Start an import job (PUT into the list) of the NDJSON file at ``s3_url``; return its id."""
        ...

    def import_status(self, job_id: str) -> ImportStatus: ...
