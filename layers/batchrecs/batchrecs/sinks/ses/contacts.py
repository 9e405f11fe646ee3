"""The SES destination: per-user records become contacts of the account's SES contact list.

    chunk worker  : lines -> users -> e-mail addresses (the id itself, or the user directory, 100
                    ids per BatchGetItem) -> staged contacts, one NDJSON file per chunk
                    (``exports/<job>/contacts/<chunk>.jsonl``; a redelivered chunk rewrites its own file)
    last chunk    : the job becomes IMPORTING
    monitor tick  : ContactImporter.start merges the staged contacts per address with the list's
                    current preferences, writes import files of at most ``maxContactsPerImport``
                    contacts under ``ses-imports/<job>/`` and starts one SES import job per file;
                    later ticks poll them (ContactImporter.poll) and finish the export with their counts

Opt-outs are never overridden. An import replaces the contact's preferences with the file's, so
every contact written carries all of its current topic preferences; a contact that unsubscribed
from everything is left out, and a topic the contact opted out of stays OPT_OUT. Only a topic with
no preference (or a new contact) is subscribed.

``attributesData`` belongs to the contact, not to a topic: it holds the last export that reached the
contact (``route``, ``jobName``, ``generatedAt`` and ``items``/``scores``, or ``segments``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from batchrecs import layout
from batchrecs.formats.lines import iter_lines
from batchrecs.ports import ObjectStore, ObjectWriter
from batchrecs.sinks.ses.ports import AddressBook, ContactLists, ExistingContact
from batchrecs.sinks.ses.settings import IdIsAddress, SesDestination

LOOKUP_BATCH = 100  # BatchGetItem reads at most 100 keys
OPT_IN, OPT_OUT = "OPT_IN", "OPT_OUT"
IMPORT_DONE = {"COMPLETED", "FAILED", "CANCELLED"}  # SES import job statuses that are final


class IdAddressBook:
    """The user id is the address (when it looks like one)."""

    def addresses(self, user_ids: Sequence[str]) -> Mapping[str, str]:
        return {user: user for user in user_ids if is_address(user)}


def is_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain) and not any(c.isspace() for c in value)


def address_book_for(destination: SesDestination, directory: Any) -> AddressBook:
    """``directory(lookup)`` builds the user-directory reader (an adapter)."""
    if isinstance(destination.address, IdIsAddress):
        return IdAddressBook()
    return directory(destination.address)


@dataclass
class StagedCounts:
    contacts: int = 0  # staged contact records (one per user with an address, per line)
    missing: int = 0  # users without an address: counted and listed in the report, not failed


@dataclass
class ContactStager:
    """Resolves users' addresses ``LOOKUP_BATCH`` at a time and stages one contact record each.

    Memory is bounded by one lookup batch, so a segment line of millions of users streams through.
    Users without an address go to ``missing`` (their ids only: never an address in a report).
    """

    addresses: AddressBook
    out: ObjectWriter
    missing: Callable[[str], None]  # reports a user id without an address
    counts: StagedCounts = field(default_factory=StagedCounts)
    _pending: list[tuple[str, bytes]] = field(default_factory=list)

    def add(self, user: str, tail: bytes) -> None:
        """Stage ``user``; ``tail`` is the rest of its record: ``"topics":[...],"attributes":{...}``."""
        self._pending.append((user, tail))
        if len(self._pending) >= LOOKUP_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        found = self.addresses.addresses(list(dict.fromkeys(user for user, _ in self._pending)))
        lines = []
        for user, tail in self._pending:
            email = found.get(user)
            if email is None:
                self.counts.missing += 1
                self.missing(user)
                continue
            lines.append(b'{"emailAddress":' + orjson.dumps(email) + b"," + tail + b"}\n")
        if lines:
            self.out.write(b"".join(lines))
            self.counts.contacts += len(lines)
        self._pending = []


def staged_tail(topics: Iterable[str], attributes: Mapping[str, Any]) -> bytes:
    return orjson.dumps({"topics": sorted(topics), "attributes": attributes})[1:-1]


@dataclass
class ImportPlan:
    files: list[str]
    counts: dict[str, int]


class ContactImporter:
    """Builds SES import files from an export's staged contacts and runs and polls the import jobs."""

    def __init__(self, objects: ObjectStore, lists: ContactLists) -> None:
        self._objects = objects
        self._lists = lists

    def prepare(self, bucket: str, job_name: str, destination: SesDestination) -> ImportPlan:
        """Merge the staged contacts with the list's preferences and write the import files."""
        wanted = self._staged(bucket, job_name)
        existing: dict[str, ExistingContact] = {}
        for contact in self._lists.contacts(destination.contactList):
            if contact.email.lower() in wanted:
                existing[contact.email.lower()] = contact
        counts = {"contacts": 0, "newContacts": 0, "optedOut": 0, "topicOptOutsKept": 0, "subscribed": 0}
        records = self._records(wanted, existing, counts)
        files = self._write(bucket, job_name, records, destination.maxContactsPerImport)
        counts["importFiles"] = len(files)
        return ImportPlan(files, counts)

    def missing_topics(self, destination: SesDestination) -> set[str]:
        """The route's topics that its contact list lacks: every contact of such an import would fail."""
        return destination.topics - self._lists.topics(destination.contactList)

    def start(self, bucket: str, files: Sequence[str], destination: SesDestination) -> list[str]:
        return [self._lists.start_import(destination.contactList, f"s3://{bucket}/{key}") for key in files]

    def poll(self, job_ids: Sequence[str]) -> dict[str, Any] | None:
        """The import jobs' counts once all have ended; None while any is still running.

        Any contact that failed to import fails the export (and so alerts), naming SES's files of the
        failed records; the contacts that did import stay imported."""
        statuses = [self._lists.import_status(job_id) for job_id in job_ids]
        if any(status.status not in IMPORT_DONE for status in statuses):
            return None
        failures = [
            f"{job_id}: {s.failure or s.status}"
            for job_id, s in zip(job_ids, statuses, strict=True)
            if s.status != "COMPLETED"
        ]
        failed = sum(status.failed for status in statuses)
        urls = [status.failed_records_url for status in statuses if status.failed_records_url]
        reasons = [*failures]
        if failed:
            where = f" (failed records: {', '.join(urls)})" if urls else ""
            reasons.append(f"{failed} contacts failed to import{where}")
        return {
            "contactsImported": sum(status.processed for status in statuses),
            "contactsFailed": failed,
            "importJobsFailed": len(failures),
            **({"failedRecords": urls} if urls else {}),
            "failure": "; ".join(reasons) or None,
        }

    def _staged(self, bucket: str, job_name: str) -> dict[str, list[Any]]:
        """address (lower case) -> [address, topics, attributes]; later chunks and lines win, topics
        and segments accumulate (a user in several segments of a job)."""
        wanted: dict[str, list[Any]] = {}
        for key in sorted(
            self._objects.list_keys(bucket, layout.staged_contacts_prefix(job_name), ".jsonl"),
            key=_chunk_order,
        ):
            for line in iter_lines(self._objects.iter_chunks(bucket, key)):
                record = orjson.loads(line)
                email = record["emailAddress"]
                entry = wanted.get(email.lower())
                if entry is None:
                    wanted[email.lower()] = [email, set(record["topics"]), record["attributes"]]
                    continue
                entry[1].update(record["topics"])
                merged = record["attributes"]
                if "segments" in merged and "segments" in entry[2]:
                    merged["segments"] = list(dict.fromkeys([*entry[2]["segments"], *merged["segments"]]))
                entry[2] = merged
        return wanted

    @staticmethod
    def _records(
        wanted: Mapping[str, list[Any]], existing: Mapping[str, ExistingContact], counts: dict[str, int]
    ) -> Iterator[bytes]:
        for key, (email, topics, attributes) in wanted.items():
            current = existing.get(key)
            if current is None:
                counts["newContacts"] += 1
                preferences: dict[str, str] = {}
            elif current.unsubscribe_all:
                counts["optedOut"] += 1
                continue
            else:
                email = current.email
                preferences = dict(current.topics)
            kept = {topic for topic in topics if preferences.get(topic) == OPT_OUT}
            counts["topicOptOutsKept"] += len(kept)
            if kept == topics:
                counts["optedOut"] += 1
                continue  # opted out of every topic this export would subscribe it to
            for topic in topics - kept:
                counts["subscribed"] += preferences.get(topic) != OPT_IN
                preferences[topic] = OPT_IN
            counts["contacts"] += 1
            yield (
                orjson.dumps(
                    {
                        "emailAddress": email,
                        "unsubscribeAll": False,
                        "topicPreferences": [
                            {"topicName": topic, "subscriptionStatus": status}
                            for topic, status in sorted(preferences.items())
                        ],
                        "attributesData": orjson.dumps(attributes).decode(),
                    }
                )
                + b"\n"
            )

    def _write(self, bucket: str, job_name: str, records: Iterable[bytes], per_file: int) -> list[str]:
        files: list[str] = []
        writer: ObjectWriter | None = None
        in_file = 0
        try:
            for record in records:
                if writer is None or in_file >= per_file:
                    if writer is not None:
                        writer.close()
                    files.append(layout.contact_import_key(job_name, len(files) + 1))
                    writer = self._objects.writer(bucket, files[-1], "application/x-ndjson")
                    in_file = 0
                writer.write(record)
                in_file += 1
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
        return files


def _chunk_order(key: str) -> tuple[int, ...]:
    """``.../contacts/3.12.jsonl`` -> (3, 12): file then chunk order, so later lines win."""
    name = key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    return tuple(int(part) for part in name.split(".") if part.isdigit())
