"""Reading the recommendations table, for application developers: a user's current records across
routes, with one Query.

    from batchrecs.consumer import recommendations_for

    found = recommendations_for("1234", table_name="<RecommendationsTableName>")
    for record in found.route("home"):
        print(record.items)           # best first

What "current" means: a record whose ``expiresAt`` has passed is left out (DynamoDB's TTL deletes
lazily, days later), and of a route's records of this user only those of its newest export are kept:
a segment route's user may still hold segments of an older job that the newer job did not write again
(an inference route has one record per user and route, which the newer job overwrites). Records of
an older job are known as such only beside a newer one of the same route for the same user.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class Record:
    route: str
    items: list[str]  # recommended item ids, best first (segment routes: empty)
    jobName: str
    generatedAt: str
    expiresAt: int
    scores: list[float] | None = None
    solutionVersionArn: str | None = None
    segment: str | None = None  # segment routes: the itemId or attribute expression
    rank: int | None = None  # segment routes: the user's place in the segment, from 1
    theme: str | None = None  # themes routes


@dataclass(frozen=True)
class UserRecommendations:
    user: str
    records: list[Record] = field(default_factory=list)
    skipped_expired: int = 0  # past their expiresAt, not yet deleted by TTL
    skipped_older: int = 0  # of an older export of a route than this user's newest one

    def route(self, name: str) -> list[Record]:
        """The user's records of route ``name`` (a segment route: one per segment, best rank first)."""
        found = [record for record in self.records if record.route == name]
        return sorted(found, key=lambda record: record.rank or 0)

    @property
    def routes(self) -> list[str]:
        return sorted({record.route for record in self.records})


def recommendations_for(
    user: str, table_name: str, client: Any = None, now: float | None = None
) -> UserRecommendations:
    """The user's current records of every route (one Query on the table's key, all pages)."""
    dynamodb = client or boto3.client("dynamodb")
    pages = dynamodb.get_paginator("query").paginate(
        TableName=table_name,
        KeyConditionExpression="pk = :user",
        ExpressionAttributeValues={":user": {"S": user}},
        ConsistentRead=False,
    )
    moment = time.time() if now is None else now
    read = [_record(item) for page in pages for item in page.get("Items", [])]
    live = [record for record in read if record.expiresAt > moment]
    newest: dict[str, str] = {}
    for record in live:
        newest[record.route] = max(newest.get(record.route, ""), record.generatedAt)
    current = [record for record in live if record.generatedAt == newest[record.route]]
    return UserRecommendations(user, current, len(read) - len(live), len(live) - len(current))


def _record(item: dict[str, Any]) -> Record:
    plain = {name: _deserializer.deserialize(value) for name, value in item.items()}
    return Record(
        route=str(plain["route"]),
        items=[str(item) for item in plain.get("items", [])],
        jobName=str(plain["jobName"]),
        generatedAt=str(plain["generatedAt"]),
        expiresAt=int(plain["expiresAt"]),
        scores=[float(score) for score in plain["scores"]] if "scores" in plain else None,
        solutionVersionArn=plain.get("solutionVersionArn"),
        segment=plain.get("segment"),
        rank=int(plain["rank"]) if "rank" in plain else None,
        theme=plain.get("theme"),
    )
