"""The SES destination against the local endpoint: moto's contact list plus our import-job emulator,
through unchanged boto3 clients; and the contact importer that keeps opt-outs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from batchrecs.aws.directory import DirectoryAddressBook
from batchrecs.aws.s3 import S3Objects
from batchrecs.aws.ses import SesContactLists
from batchrecs.layout import staged_contacts_key
from batchrecs.sinks.ses.contacts import ContactImporter
from batchrecs.sinks.ses.settings import DirectoryLookup, SesDestination
from batchrecs_local.endpoint import ACCOUNT, LocalEndpoint
from batchrecs_local.personalize.emulator import Timings
from botocore.exceptions import ClientError

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]
BUCKET = "ses-data"
LIST = "batchrecs"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    local = LocalEndpoint(timings=Timings(pending=0.05, running=0.05)).start()
    local.client("s3").create_bucket(Bucket=BUCKET)
    # as the template's bucket policy: SES may read only imports/, for this account
    local.iam.set_resource_policy(
        f"arn:aws:s3:::{BUCKET}",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ses.amazonaws.com"},
                    "Action": "s3:GetObject",
                    "Resource": [f"arn:aws:s3:::{BUCKET}/imports/*", f"arn:aws:s3:::{BUCKET}/ses-imports/*"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                }
            ],
        },
    )
    yield local
    local.stop()


@pytest.fixture
def ses(endpoint: LocalEndpoint) -> Iterator[Any]:
    client = endpoint.client("sesv2")
    for contact_list in client.list_contact_lists()["ContactLists"]:
        client.delete_contact_list(ContactListName=contact_list["ContactListName"])
    client.create_contact_list(
        ContactListName=LIST,
        Topics=[
            {"TopicName": name, "DisplayName": name, "DefaultSubscriptionStatus": "OPT_OUT"}
            for name in ("weekly", "news", "deals")
        ],
    )
    yield client
    client.delete_contact_list(ContactListName=LIST)


def _wait(client: Any, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = client.get_import_job(JobId=job_id)
        if job["JobStatus"] in ("COMPLETED", "FAILED"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"import job {job_id} did not end")


def _import(client: Any, url: str, action: str = "PUT") -> dict[str, Any]:
    """Run an import job (PUT into the list, or DELETE from it) of the file at ``url`` and wait for its end."""
    job_id = client.create_import_job(
        ImportDestination={
            "ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": action}
        },
        ImportDataSource={"S3Url": url, "DataFormat": "JSON"},
    )["JobId"]
    return _wait(client, job_id)


def _put_ndjson(endpoint: LocalEndpoint, key: str, rows: list[dict[str, Any]]) -> str:
    body = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    endpoint.client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def _contact(client: Any, email: str) -> dict[str, Any]:
    contact = client.get_contact(ContactListName=LIST, EmailAddress=email)
    contact["Topics"] = {
        p["TopicName"]: p["SubscriptionStatus"] for p in contact.get("TopicPreferences") or []
    }
    return contact


# ------------------------------------------------------------------ the emulator


def test_a_delete_import_removes_the_contacts_it_names_and_counts_those_that_are_not_there(
    endpoint: LocalEndpoint, ses: Any
) -> None:
    ses.create_contact(ContactListName=LIST, EmailAddress="gone@example.com")
    ses.create_contact(ContactListName=LIST, EmailAddress="stays@example.com")
    url = _put_ndjson(
        endpoint,
        "imports/delete.jsonl",
        [{"emailAddress": "gone@example.com"}, {"emailAddress": "never@example.com"}],
    )
    job = _import(ses, url, "DELETE")
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == ("COMPLETED", 1, 1)
    listed = [contact["EmailAddress"] for contact in ses.list_contacts(ContactListName=LIST)["Contacts"]]
    assert listed == ["stays@example.com"]


def test_one_contact_list_per_account_and_at_most_20_topics(ses: Any) -> None:
    with pytest.raises(ClientError) as second:
        ses.create_contact_list(ContactListName="another")
    assert second.value.response["Error"]["Code"] == "LimitExceededException"
    too_many = [
        {"TopicName": f"t{i}", "DisplayName": "t", "DefaultSubscriptionStatus": "OPT_IN"} for i in range(21)
    ]
    with pytest.raises(ClientError) as topics:
        ses.update_contact_list(ContactListName=LIST, Topics=too_many)
    assert topics.value.response["Error"]["Code"] == "LimitExceededException"
    assert len(ses.get_contact_list(ContactListName=LIST)["Topics"]) == 3  # unchanged


def test_import_job_puts_contacts_counts_bad_records_and_is_listed(endpoint: LocalEndpoint, ses: Any) -> None:
    ses.create_contact(
        ContactListName=LIST,
        EmailAddress="old@example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}],
        AttributesData='{"v": 1}',
    )
    url = _put_ndjson(
        endpoint,
        "imports/a.jsonl",
        [
            {
                "emailAddress": "new@example.com",
                "topicPreferences": [{"topicName": "weekly", "subscriptionStatus": "OPT_IN"}],
                "attributesData": '{"items": ["1"]}',
            },
            {
                "emailAddress": "old@example.com",
                "topicPreferences": [{"topicName": "weekly", "subscriptionStatus": "OPT_IN"}],
                "attributesData": '{"v": 2}',
            },
            {
                "emailAddress": "bad@example.com",
                "topicPreferences": [{"topicName": "no-such-topic", "subscriptionStatus": "OPT_IN"}],
            },
            {"topicPreferences": []},
        ],
    )
    job = _import(ses, url)
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == ("COMPLETED", 2, 2)
    assert _contact(ses, "new@example.com")["Topics"] == {"weekly": "OPT_IN"}
    old = _contact(ses, "old@example.com")
    assert old["Topics"] == {"weekly": "OPT_IN"}  # a PUT overwrites: the news preference is gone
    assert old["AttributesData"] == '{"v": 2}'
    assert job["JobId"] in [summary["JobId"] for summary in ses.list_import_jobs()["ImportJobs"]]
    # And the failed records, with why, are at FailureInfo.FailedRecordsS3Url (SES's own file)
    import urllib3

    failed = urllib3.request("GET", job["FailureInfo"]["FailedRecordsS3Url"]).data.splitlines()
    assert [json.loads(json.loads(line)["record"]).get("emailAddress") for line in failed] == [
        "bad@example.com",
        None,
    ]


def test_import_job_of_a_file_the_bucket_policy_does_not_share_with_ses_fails(
    endpoint: LocalEndpoint, ses: Any
) -> None:
    # Given an import file outside the prefix the bucket policy lets ses.amazonaws.com read
    url = _put_ndjson(endpoint, "exports/a.jsonl", [{"emailAddress": "new@example.com"}])
    # When SES is asked to import it
    job = _import(ses, url)
    # Then the job fails naming the denied read, and no contact is created
    assert job["JobStatus"] == "FAILED"
    assert (
        "ses.amazonaws.com is not authorized to perform: s3:GetObject" in job["FailureInfo"]["ErrorMessage"]
    )
    assert ses.list_contacts(ContactListName=LIST)["Contacts"] == []


def test_import_job_of_a_missing_file_fails_and_of_a_missing_list_is_refused(ses: Any) -> None:
    destination = {"ContactListDestination": {"ContactListName": LIST, "ContactListImportAction": "PUT"}}
    job_id = ses.create_import_job(
        ImportDestination=destination,
        ImportDataSource={"S3Url": f"s3://{BUCKET}/imports/none.jsonl", "DataFormat": "JSON"},
    )["JobId"]
    job = _wait(ses, job_id)
    assert job["JobStatus"] == "FAILED"
    assert "imports/none.jsonl" in job["FailureInfo"]["ErrorMessage"]
    with pytest.raises(ClientError) as missing:
        ses.create_import_job(
            ImportDestination={
                "ContactListDestination": {"ContactListName": "nope", "ContactListImportAction": "PUT"}
            },
            ImportDataSource={"S3Url": f"s3://{BUCKET}/x.jsonl", "DataFormat": "JSON"},
        )
    assert missing.value.response["Error"]["Code"] == "NotFoundException"


# ------------------------------------------------------------------ our adapters and importer


def test_directory_lookup_reads_addresses_and_leaves_out_users_without_one(endpoint: LocalEndpoint) -> None:
    dynamodb = endpoint.client("dynamodb")
    dynamodb.create_table(
        TableName="directory",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        for user in range(150):
            item = {"id": {"S": f"u{user}"}}
            if user % 3:
                item["mail"] = {"S": f"user{user}@example.com"}
            dynamodb.put_item(TableName="directory", Item=item)
        book = DirectoryAddressBook(
            DirectoryLookup(type="directory", table="directory", keyAttribute="id", emailAttribute="mail"),
            dynamodb,
        )
        found = {}
        ids = [f"u{user}" for user in range(160)]  # 10 ids are not in the directory at all
        for start in range(0, len(ids), 100):
            found.update(book.addresses(ids[start : start + 100]))
    finally:
        dynamodb.delete_table(TableName="directory")
    assert found == {f"u{user}": f"user{user}@example.com" for user in range(150) if user % 3}


def _stage(endpoint: LocalEndpoint, job: str, chunks: dict[str, list[dict[str, Any]]]) -> None:
    for chunk, rows in chunks.items():
        _put_ndjson(endpoint, staged_contacts_key(job, chunk), rows)


def _export_contacts(
    endpoint: LocalEndpoint, ses: Any, job: str, destination: SesDestination
) -> dict[str, Any]:
    importer = ContactImporter(S3Objects(endpoint.client("s3")), SesContactLists(ses))
    plan = importer.prepare(BUCKET, job, destination)
    job_ids = importer.start(BUCKET, plan.files, destination)
    for job_id in job_ids:
        _wait(ses, job_id)
    result = importer.poll(job_ids)
    assert result is not None
    return {"plan": plan, "result": result, "jobs": job_ids}


def _staged_user(email: str, topic: str, week: int) -> dict[str, Any]:
    return {
        "emailAddress": email,
        "topics": [topic],
        "attributes": {"route": "weekly-email", "jobName": f"w{week}", "items": [f"i{week}"]},
    }


def test_opt_outs_and_unsubscribe_all_survive_repeated_exports(endpoint: LocalEndpoint, ses: Any) -> None:
    ses.create_contact(ContactListName=LIST, EmailAddress="gone@example.com", UnsubscribeAll=True)
    ses.create_contact(
        ContactListName=LIST,
        EmailAddress="no-weekly@example.com",
        TopicPreferences=[
            {"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"},
            {"TopicName": "news", "SubscriptionStatus": "OPT_IN"},
        ],
    )
    ses.create_contact(
        ContactListName=LIST,
        EmailAddress="news-reader@example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}],
    )
    destination = SesDestination(
        type="ses", contactList=LIST, topic="weekly", address={"type": "userId"}, maxContactsPerImport=2
    )
    emails = [
        "gone@example.com",
        "no-weekly@example.com",
        "news-reader@example.com",
        "new1@example.com",
        "new2@example.com",
    ]
    for week in range(3):
        job = f"weekly-{week}"
        _stage(
            endpoint,
            job,
            {
                "0.0": [_staged_user(email, "weekly", week) for email in emails[:3]],
                "0.1": [_staged_user(email, "weekly", week) for email in emails[3:]],
            },
        )
        run = _export_contacts(endpoint, ses, job, destination)
        assert run["plan"].counts["optedOut"] == 2  # unsubscribed from all; opted out of weekly
        assert run["plan"].counts["contacts"] == 3
        assert len(run["plan"].files) == 2 and len(run["jobs"]) == 2  # 3 contacts, at most 2 per file
        assert run["result"] == {
            "contactsImported": 3,
            "contactsFailed": 0,
            "importJobsFailed": 0,
            "failure": None,
        }
        gone = _contact(ses, "gone@example.com")
        assert gone["UnsubscribeAll"] is True and gone["Topics"] == {}
        assert _contact(ses, "no-weekly@example.com")["Topics"] == {"weekly": "OPT_OUT", "news": "OPT_IN"}
        reader = _contact(ses, "news-reader@example.com")
        assert reader["Topics"] == {"news": "OPT_IN", "weekly": "OPT_IN"}  # other topics kept
        assert json.loads(reader["AttributesData"])["jobName"] == f"w{week}"
        assert _contact(ses, "new2@example.com")["Topics"] == {"weekly": "OPT_IN"}
    # Then a contact who opts out after being subscribed stays out at the next export
    ses.update_contact(
        ContactListName=LIST,
        EmailAddress="new1@example.com",
        TopicPreferences=[{"TopicName": "weekly", "SubscriptionStatus": "OPT_OUT"}],
    )
    _stage(endpoint, "weekly-9", {"0.0": [_staged_user(email, "weekly", 9) for email in emails]})
    run = _export_contacts(endpoint, ses, "weekly-9", destination)
    assert run["plan"].counts["optedOut"] == 3
    assert _contact(ses, "new1@example.com")["Topics"] == {"weekly": "OPT_OUT"}


def test_a_replacing_export_drops_the_subscriptions_it_no_longer_gives_and_keeps_every_opt_out(
    endpoint: LocalEndpoint, ses: Any
) -> None:
    def subscribe(email: str, **topics: str) -> None:
        preferences = [{"TopicName": t, "SubscriptionStatus": s} for t, s in topics.items()]
        ses.create_contact(
            ContactListName=LIST,
            EmailAddress=email,
            TopicPreferences=preferences,
            AttributesData='{"jobName": "w1"}',
        )

    # Given last week's subscribers of "weekly" (the route's topic), one also on "news", one opted out
    subscribe("stays@example.com", weekly="OPT_IN")
    subscribe("dropped@example.com", weekly="OPT_IN")
    subscribe("also-news@example.com", weekly="OPT_IN", news="OPT_IN")
    subscribe("opted-out@example.com", weekly="OPT_OUT")
    subscribe("news-only@example.com", news="OPT_IN")
    destination = SesDestination(
        type="ses", contactList=LIST, topic="weekly", address={"type": "userId"}, replacePrevious=True
    )
    # When this week's export reaches only stays@ and a new contact
    _stage(
        endpoint,
        "weekly-r",
        {"0.0": [_staged_user(e, "weekly", 2) for e in ("stays@example.com", "new@example.com")]},
    )
    run = _export_contacts(endpoint, ses, "weekly-r", destination)
    # Then the two it no longer reaches lose "weekly" (no preference: the topic's default OPT_OUT applies)
    assert run["plan"].counts["subscriptionsRemoved"] == 2
    assert run["result"]["contactsImported"] == 4 and run["result"]["failure"] is None
    assert _contact(ses, "dropped@example.com")["Topics"] == {}
    assert _contact(ses, "also-news@example.com")["Topics"] == {"news": "OPT_IN"}
    # And every opt-out, every other topic and this week's contacts are as they should be
    assert _contact(ses, "opted-out@example.com")["Topics"] == {"weekly": "OPT_OUT"}
    assert _contact(ses, "news-only@example.com")["Topics"] == {"news": "OPT_IN"}
    assert _contact(ses, "stays@example.com")["Topics"] == {"weekly": "OPT_IN"}
    assert _contact(ses, "new@example.com")["Topics"] == {"weekly": "OPT_IN"}
    # And a replacing route refuses a topic that subscribes contacts by default (dropping would not unsubscribe)
    ses.update_contact_list(
        ContactListName=LIST,
        Topics=[
            {"TopicName": "weekly", "DisplayName": "weekly", "DefaultSubscriptionStatus": "OPT_IN"},
            {"TopicName": "news", "DisplayName": "news", "DefaultSubscriptionStatus": "OPT_OUT"},
        ],
    )
    importer = ContactImporter(S3Objects(endpoint.client("s3")), SesContactLists(ses))
    problem = importer.topic_problem(destination)
    assert (
        problem is not None
        and "replacePrevious needs topics whose DefaultSubscriptionStatus is OPT_OUT" in problem
    )
    assert importer.topic_problem(destination.model_copy(update={"replacePrevious": False})) is None


def test_segment_contacts_gather_their_topics_and_segments(endpoint: LocalEndpoint, ses: Any) -> None:
    destination = SesDestination(
        type="ses",
        contactList=LIST,
        segmentTopics={"item-1": "news", "item-2": "deals"},
        address={"type": "userId"},
    )
    segment = {"route": "s", "jobName": "seg"}
    _stage(
        endpoint,
        "seg",
        {
            "0.0": [
                {
                    "emailAddress": "a@example.com",
                    "topics": ["news"],
                    "attributes": {**segment, "segments": ["item-1"]},
                }
            ],
            "1.0": [
                {
                    "emailAddress": "A@example.com",
                    "topics": ["deals"],
                    "attributes": {**segment, "segments": ["item-2"]},
                },
                {
                    "emailAddress": "b@example.com",
                    "topics": ["deals"],
                    "attributes": {**segment, "segments": ["item-2"]},
                },
            ],
        },
    )
    run = _export_contacts(endpoint, ses, "seg", destination)
    assert run["plan"].counts["contacts"] == 2
    a = _contact(ses, "a@example.com")
    assert a["Topics"] == {"news": "OPT_IN", "deals": "OPT_IN"}
    assert json.loads(a["AttributesData"])["segments"] == ["item-1", "item-2"]


def test_erasing_a_user_deletes_all_their_records_and_their_contact(
    endpoint: LocalEndpoint, ses: Any
) -> None:
    from batchrecs.aws.erasure import erase_user

    ddb = endpoint.client("dynamodb")
    ddb.create_table(
        TableName="erase-recs",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    keys = [("7", "home"), ("7", "segments#105"), ("7", "segments#attr-1"), ("8", "home")]
    keys += [("7", f"many#{n}") for n in range(30)]  # more than one BatchWriteItem of deletes
    for pk, sk in keys:
        ddb.put_item(TableName="erase-recs", Item={"pk": {"S": pk}, "sk": {"S": sk}})
    ses.create_contact(ContactListName=LIST, EmailAddress="user7@example.com")
    erased = erase_user("7", "erase-recs", "user7@example.com", LIST, dynamodb=ddb, ses=ses)
    assert (erased.records, erased.contact) == (33, True)
    left = ddb.scan(TableName="erase-recs")["Items"]
    assert [(item["pk"]["S"], item["sk"]["S"]) for item in left] == [("8", "home")]
    assert "user7@example.com" not in [
        c["EmailAddress"] for c in ses.list_contacts(ContactListName=LIST)["Contacts"]
    ]
    # erasing again is harmless (at least once: an operator may run it twice)
    assert erase_user("7", "erase-recs", "user7@example.com", LIST, dynamodb=ddb, ses=ses).records == 0
    ddb.delete_table(TableName="erase-recs")


def test_the_preference_ledger_keeps_each_change_once_and_the_keeper_puts_opt_outs_back(
    endpoint: LocalEndpoint, ses: Any
) -> None:
    from batchrecs.aws.preference_ledger import DynamoDBPreferenceLedger
    from batchrecs.sinks.ses.opt_outs import OptOutKeeper, PreferenceChange
    from batchrecs_local.stack import table_request

    ddb = endpoint.client("dynamodb")
    ddb.create_table(**table_request("PreferenceLedgerTable", "ledger"))  # keys as the template deploys
    ledger = DynamoDBPreferenceLedger("ledger", retention_days=7, client=ddb)
    before = PreferenceChange(LIST, "a@example.com", "2026-12-01T09:59:59Z", False, {"weekly": "OPT_OUT"})
    after = PreferenceChange(LIST, "a@example.com", "2026-12-01T10:00:03Z", True, {"weekly": "OPT_OUT"})
    for change in (before, after, after):  # EventBridge may deliver an event twice
        ledger.record(change)
    assert list(ledger.changes_since(LIST, "2026-12-01T10:00:00Z")) == [after]
    [item] = [i for i in ddb.scan(TableName="ledger")["Items"] if i["at"]["S"] == after.at]
    assert int(item["expiresAt"]["N"]) == 1796119203 + 7 * 86400  # 2026-12-01T10:00:03Z + 7 days
    # An import wrote the contact subscribed, with its attributes, after she unsubscribed from all
    attributes = json.dumps({"jobName": "w-1", "items": ["9"]})
    ses.create_contact(
        ContactListName=LIST,
        EmailAddress="a@example.com",
        TopicPreferences=[{"TopicName": "weekly", "SubscriptionStatus": "OPT_IN"}],
        AttributesData=attributes,
    )
    keeper = OptOutKeeper(ledger, SesContactLists(ses))
    assert keeper.restore(LIST, "2026-12-01T10:00:00Z") == 1
    contact = _contact(ses, "a@example.com")
    assert contact["UnsubscribeAll"] is True
    assert contact["Topics"] == {"weekly": "OPT_OUT"}
    assert contact["AttributesData"] == attributes
    assert keeper.restore(LIST, "2026-12-01T10:00:00Z") == 0
    ddb.delete_table(TableName="ledger")
