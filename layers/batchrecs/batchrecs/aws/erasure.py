"""Erase one user: every record of theirs in the recommendations table (all routes, segments included)
and, given their address, their contact in the SES contact list.

What stays, and for how long: the bucket's copies (staged inputs, Personalize's output, reports) hold
user ids until the lifecycle rules expire them (``JobDataRetentionDays``, 30 days by default), staged
contacts and import files hold addresses for ``ContactDataRetentionDays`` (7); jobs hold no user data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

_BATCH = 25  # BatchWriteItem's limit


@dataclass
class Erased:
    records: int = 0
    contact: bool = False


def erase_user(
    user_id: str,
    recommendations_table: str,
    email: str | None = None,
    contact_list: str | None = None,
    dynamodb: Any = None,
    ses: Any = None,
) -> Erased:
    dynamodb = dynamodb or boto3.client("dynamodb")
    erased = Erased()
    keys = []
    for page in dynamodb.get_paginator("query").paginate(
        TableName=recommendations_table,
        KeyConditionExpression="pk = :user",
        ExpressionAttributeValues={":user": {"S": user_id}},
        ProjectionExpression="pk, sk",
        ConsistentRead=True,
    ):
        keys.extend(page.get("Items", []))
    for start in range(0, len(keys), _BATCH):
        requests = [{"DeleteRequest": {"Key": key}} for key in keys[start : start + _BATCH]]
        while requests:  # unprocessed deletes are sent again until none is left
            response = dynamodb.batch_write_item(RequestItems={recommendations_table: requests})
            requests = response.get("UnprocessedItems", {}).get(recommendations_table, [])
    erased.records = len(keys)
    if email and contact_list:
        try:
            (ses or boto3.client("sesv2")).delete_contact(ContactListName=contact_list, EmailAddress=email)
            erased.contact = True
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise
    return erased
