"""The preference ledger table: contacts' subscription changes, one item per change.

Key: ``contactList`` (partition) and ``change`` = ``<address, lower case>#<time>`` (sort). A change
recorded twice (EventBridge delivers at least once) is one item. Items expire ``retention_days`` after
the change (TTL ``expiresAt``), as the other copies of addresses do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

import boto3

from batchrecs.sinks.ses.opt_outs import PreferenceChange


class DynamoDBPreferenceLedger:
    def __init__(self, table_name: str, retention_days: int = 7, client: Any = None) -> None:
        self._table = table_name
        self._retention = timedelta(days=retention_days)
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("dynamodb")

    def record(self, change: PreferenceChange) -> None:
        expires = datetime.fromisoformat(change.at) + self._retention
        self._client.put_item(
            TableName=self._table,
            Item={
                "contactList": {"S": change.contact_list},
                "change": {"S": f"{change.email.lower()}#{change.at}"},
                "email": {"S": change.email},
                "at": {"S": change.at},
                "unsubscribeAll": {"BOOL": change.unsubscribe_all},
                "topics": {"M": {topic: {"S": status} for topic, status in change.topics.items()}},
                "expiresAt": {"N": str(int(expires.timestamp()))},
            },
        )

    def changes_since(self, contact_list: str, since: str) -> Iterator[PreferenceChange]:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="contactList = :list",
            FilterExpression="#at >= :since",
            ExpressionAttributeNames={"#at": "at"},
            ExpressionAttributeValues={":list": {"S": contact_list}, ":since": {"S": since}},
            ConsistentRead=True,  # a change recorded just before the import ended is seen
        ):
            for item in page.get("Items", []):
                yield PreferenceChange(
                    contact_list=contact_list,
                    email=item["email"]["S"],
                    at=item["at"]["S"],
                    unsubscribe_all=item["unsubscribeAll"]["BOOL"],
                    topics={topic: value["S"] for topic, value in item["topics"]["M"].items()},
                )
