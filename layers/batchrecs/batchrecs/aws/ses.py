"""The account's SES contact list (SES API v2): its contacts' preferences and contact import jobs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from batchrecs.sinks.ses.ports import ExistingContact, ImportStatus

PAGE_SIZE = 1000


class SesContactLists:
    def __init__(self, client: Any = None) -> None:
        self._client = client or boto3.client("sesv2")

    def contacts_page(self, contact_list: str, token: str | None) -> tuple[list[ExistingContact], str | None]:
        page = self._client.list_contacts(
            ContactListName=contact_list, PageSize=PAGE_SIZE, **({"NextToken": token} if token else {})
        )
        contacts = [
            ExistingContact(
                email=contact["EmailAddress"],
                unsubscribe_all=bool(contact.get("UnsubscribeAll")),
                topics=_preferences(contact),
            )
            for contact in page.get("Contacts", [])
        ]
        return contacts, page.get("NextToken") or None

    def contact(self, contact_list: str, email: str) -> ExistingContact | None:
        try:
            found = self._client.get_contact(ContactListName=contact_list, EmailAddress=email)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "NotFoundException":
                return None
            raise
        return ExistingContact(
            email=found["EmailAddress"],
            unsubscribe_all=bool(found.get("UnsubscribeAll")),
            topics=_preferences(found),
            attributes=found.get("AttributesData"),
        )

    def update_preferences(
        self, contact_list: str, contact: ExistingContact, unsubscribe_all: bool, topics: Mapping[str, str]
    ) -> None:
        # UpdateContact replaces what it is not given: every preference, and the attributes, are sent
        self._client.update_contact(
            ContactListName=contact_list,
            EmailAddress=contact.email,
            UnsubscribeAll=unsubscribe_all,
            TopicPreferences=[
                {"TopicName": topic, "SubscriptionStatus": status} for topic, status in sorted(topics.items())
            ],
            **({"AttributesData": contact.attributes} if contact.attributes is not None else {}),
        )

    def topics(self, contact_list: str) -> dict[str, str]:
        described = self._client.get_contact_list(ContactListName=contact_list)
        return {
            topic["TopicName"]: topic["DefaultSubscriptionStatus"] for topic in described.get("Topics") or []
        }

    def start_import(self, contact_list: str, s3_url: str) -> str:
        response = self._client.create_import_job(
            ImportDestination={
                "ContactListDestination": {"ContactListName": contact_list, "ContactListImportAction": "PUT"}
            },
            ImportDataSource={"S3Url": s3_url, "DataFormat": "JSON"},
        )
        return str(response["JobId"])

    def import_status(self, job_id: str) -> ImportStatus:
        job = self._client.get_import_job(JobId=job_id)
        failure = job.get("FailureInfo") or {}
        return ImportStatus(
            status=job["JobStatus"],
            processed=int(job.get("ProcessedRecordsCount") or 0),
            failed=int(job.get("FailedRecordsCount") or 0),
            failure=failure.get("ErrorMessage"),
            failed_records_url=failure.get("FailedRecordsS3Url"),
        )


def _preferences(contact: Mapping[str, Any]) -> dict[str, str]:
    """The contact's explicit topic preferences (not the topics' defaults)."""
    return {
        preference["TopicName"]: preference["SubscriptionStatus"]
        for preference in contact.get("TopicPreferences") or []
    }
