"""The SES destination: per-user records become contacts of the account's SES contact list.

    chunk worker  : lines -> users -> e-mail addresses (the id itself, or the user directory, 100
                    ids per BatchGetItem) -> staged contacts, one NDJSON file per chunk
                    (``exports/<job>/contacts/<chunk>.jsonl``; a redelivered chunk rewrites its own file)
    last chunk    : the job becomes IMPORTING
    monitor ticks : ContactImporter.scan reads the list's current preferences, a bounded time per tick,
                    into ``exports/<job>/list-snapshot/``; then ContactImporter.merge merges the staged
                    contacts per address with them (a partition of addresses at a time, spooled to
                    /tmp, so memory does not grow with the contacts), writes import files of at most
                    ``maxContactsPerImport`` contacts under ``ses-imports/<job>/``, and one SES import job
                    is started per file; later ticks poll them (ContactImporter.poll) and finish the
                    export with their counts

Opt-outs are never overridden. An import replaces the contact's preferences with the file's, so
every contact written carries all of its current topic preferences; a contact that unsubscribed
from everything is left out, and a topic the contact opted out of stays OPT_OUT. Only a topic with
no preference (or a new contact) is subscribed.

With ``replacePrevious`` the route owns its topics: a contact subscribed to one that this export does not
reach (or no longer gives that topic) goes into the import with that preference dropped, so the topic's
default (OPT_OUT) applies again; its opt-outs and other topics stay.

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
from batchrecs.spool import Partitions

LOOKUP_BATCH = 100  # BatchGetItem reads at most 100 keys
OPT_IN, OPT_OUT = "OPT_IN", "OPT_OUT"
IMPORT_DONE = {"COMPLETED", "FAILED", "CANCELLED"}  # SES import job statuses that are final
WRITE_RECORDS = 1000  # import records joined per write
MERGE_PARTITIONS = 256  # 10M contacts: about 40,000 in memory at once
STAGED, EXISTING = 0, 1  # the merge's two streams: the export's staged contacts, the list's snapshot


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


@dataclass(frozen=True)
class ScanProgress:
    """How far the monitor has read the contact list for an export (kept on the job between ticks)."""

    token: str | None = None  # ListContacts' NextToken to go on from
    pages: int = 0  # pages read so far
    done: bool = False


def _snapshot_line(contact: ExistingContact) -> bytes:
    return orjson.dumps({"e": contact.email, "u": contact.unsubscribe_all, "t": dict(contact.topics)}) + b"\n"


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
        """Read the whole list's preferences, merge the staged contacts with them and write the import
        files (``scan`` until done, then ``merge``)."""
        progress = self.scan(bucket, job_name, destination.contactList, ScanProgress())
        while not progress.done:
            progress = self.scan(bucket, job_name, destination.contactList, progress)
        return self.merge(bucket, job_name, destination)

    def scan(
        self,
        bucket: str,
        job_name: str,
        contact_list: str,
        progress: ScanProgress,
        time_left: Callable[[], bool] = lambda: False,
    ) -> ScanProgress:
        """Read the list's contacts from where ``progress`` stopped, a page at a time, until the list
        ends or ``time_left()`` is false, into one snapshot file (``exports/<job>/list-snapshot/``,
        named by its first page: a batch read again rewrites its own file). Where to go on."""
        token, pages = progress.token, progress.pages
        key = layout.list_snapshot_key(job_name, progress.pages)
        writer = self._objects.writer(bucket, key, "application/x-ndjson")
        try:
            while True:
                page, token = self._lists.contacts_page(contact_list, token)
                pages += 1
                writer.write(b"".join(_snapshot_line(contact) for contact in page))
                if token is None or not time_left():
                    break
        except BaseException:
            writer.abort()
            raise
        writer.close()
        return ScanProgress(token, pages, done=token is None)

    def merge(self, bucket: str, job_name: str, destination: SesDestination) -> ImportPlan:
        """Merge the staged contacts with the list's preferences (the snapshot ``scan`` read) and
        write the import files.

        Both are partitioned by address into local spool files first (``Partitions``), then merged a
        partition at a time, so memory holds a partition's contacts, not the export's: ten million
        contacts merge in the memory of about forty thousand."""
        owned = destination.topics if destination.replacePrevious else set()
        counts = {"contacts": 0, "newContacts": 0, "optedOut": 0, "topicOptOutsKept": 0, "subscribed": 0}
        if destination.replacePrevious:
            counts["subscriptionsRemoved"] = 0
        with Partitions(streams=2, key_of=_line_address, partitions=MERGE_PARTITIONS) as parts:
            for key in sorted(
                self._objects.list_keys(bucket, layout.staged_contacts_prefix(job_name), ".jsonl"),
                key=_chunk_order,
            ):  # in chunk order, so that within a partition later lines still win
                for line in iter_lines(self._objects.iter_chunks(bucket, key)):
                    parts.add(STAGED, _address_key(orjson.loads(line)["emailAddress"]), line + b"\n")
            for key in self._objects.list_keys(bucket, layout.list_snapshot_prefix(job_name), ".jsonl"):
                for line in iter_lines(self._objects.iter_chunks(bucket, key)):
                    parts.add(EXISTING, _address_key(orjson.loads(line)["e"]), line + b"\n")
            records = (
                record
                for staged, snapshot in parts.each()
                for record in self._partition_records(staged, snapshot, counts, owned)
            )
            files = self._write(bucket, job_name, records, destination.maxContactsPerImport)
        counts["importFiles"] = len(files)
        return ImportPlan(files, counts)

    def _partition_records(
        self, staged: list[bytes], snapshot: list[bytes], counts: dict[str, int], owned: set[str]
    ) -> Iterator[bytes]:
        """One partition's import records: its staged contacts merged with their current preferences,
        and (``owned`` topics) its subscribed contacts this export no longer reaches."""
        wanted = _staged(staged)
        existing: dict[str, ExistingContact] = {}
        left: list[ExistingContact] = []  # subscribed to the route's topics, not reached by this export
        for line in snapshot:
            record = orjson.loads(line)
            contact = ExistingContact(record["e"], record["u"], record["t"])
            if contact.email.lower() in wanted:
                existing[contact.email.lower()] = contact
            elif any(contact.topics.get(topic) == OPT_IN for topic in owned):
                left.append(contact)
        yield from self._records(wanted, existing, counts, owned)
        yield from _unsubscribed(left, owned, counts)

    def topic_problem(self, destination: SesDestination) -> str | None:
        """Why the route's topics cannot take this import, if they cannot: a topic the contact list
        lacks fails every contact; a replacing route removes a subscription by dropping the contact's
        preference, which unsubscribes only from a topic whose default is OPT_OUT."""
        defaults = self._lists.topics(destination.contactList)
        missing = destination.topics - defaults.keys()
        if missing:
            return (
                f"contact list {destination.contactList} has no topic {', '.join(sorted(missing))}: "
                "add it to the list (or change the route)"
            )
        opt_in = sorted(t for t in destination.topics if defaults[t] != OPT_OUT)
        if destination.replacePrevious and opt_in:
            return (
                f"topic {', '.join(opt_in)} of contact list {destination.contactList} subscribes contacts by "
                "default: replacePrevious needs topics whose DefaultSubscriptionStatus is OPT_OUT"
            )
        return None

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

    @staticmethod
    def _records(
        wanted: Mapping[str, list[Any]],
        existing: Mapping[str, ExistingContact],
        counts: dict[str, int],
        owned: set[str],
    ) -> Iterator[bytes]:
        """The export's contacts; with ``owned`` topics (replacePrevious), a contact's subscriptions to
        those this export no longer gives it are dropped too."""
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
            dropped = {topic for topic in owned - topics if preferences.get(topic) == OPT_IN}
            if kept == topics and not dropped:
                counts["optedOut"] += 1
                continue  # opted out of every topic this export would subscribe it to
            for topic in topics - kept:
                counts["subscribed"] += preferences.get(topic) != OPT_IN
                preferences[topic] = OPT_IN
            for topic in dropped:
                del preferences[topic]  # the topic's default (OPT_OUT) applies again
                counts["subscriptionsRemoved"] += 1
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
        pending: list[bytes] = []  # written a thousand records at a time
        try:
            for record in records:
                if writer is None or in_file >= per_file:
                    if writer is not None:
                        writer.write(b"".join(pending))
                        writer.close()
                    files.append(layout.contact_import_key(job_name, len(files) + 1))
                    writer = self._objects.writer(bucket, files[-1], "application/x-ndjson")
                    in_file, pending = 0, []
                pending.append(record)
                in_file += 1
                if len(pending) >= WRITE_RECORDS:
                    writer.write(b"".join(pending))
                    pending = []
            if writer is not None:
                writer.write(b"".join(pending))
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        if writer is not None:
            writer.close()
        return files


def _staged(lines: Iterable[bytes]) -> dict[str, list[Any]]:
    """address (lower case) -> [address, topics, attributes] of staged contact lines in chunk order;
    later chunks and lines win, topics and segments accumulate (a user in several segments of a job)."""
    wanted: dict[str, list[Any]] = {}
    for line in lines:
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


def _address_key(email: str) -> bytes:
    """An address as the merge matches it (SES addresses are case-insensitive)."""
    return email.lower().encode("utf-8", "surrogatepass")


def _line_address(stream: int, line: bytes) -> bytes:
    """The address a staged (``STAGED``) or snapshot line is about, as ``_address_key`` makes it."""
    record = orjson.loads(line)
    return _address_key(record["emailAddress"] if stream == STAGED else record["e"])


def _unsubscribed(
    left: Iterable[ExistingContact], owned: set[str], counts: dict[str, int]
) -> Iterator[bytes]:
    """Contacts this replacing export does not reach: their subscriptions to the route's topics are
    dropped (the topics' default, OPT_OUT, applies again); every other preference, and every opt-out,
    stays. The record has no ``attributesData``: the contact's last export stays in it."""
    for contact in left:
        preferences = {t: s for t, s in contact.topics.items() if not (t in owned and s == OPT_IN)}
        counts["subscriptionsRemoved"] += len(contact.topics) - len(preferences)
        yield (
            orjson.dumps(
                {
                    "emailAddress": contact.email,
                    "unsubscribeAll": contact.unsubscribe_all,
                    "topicPreferences": [
                        {"topicName": topic, "subscriptionStatus": status}
                        for topic, status in sorted(preferences.items())
                    ],
                }
            )
            + b"\n"
        )


def _chunk_order(key: str) -> tuple[int, ...]:
    """``.../contacts/3.12.jsonl`` -> (3, 12): file then chunk order, so later lines win."""
    name = key.rsplit("/", 1)[-1].removesuffix(".jsonl")
    return tuple(int(part) for part in name.split(".") if part.isdigit())
