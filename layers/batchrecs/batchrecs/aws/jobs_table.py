"""The jobs table: one item per job, keyed by job name, with a sparse index on what is in flight."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from batchrecs.errors import JobConflictError
from batchrecs.jobs.model import EXPORT_FAILED, EXPORTED, Inflight, Job
from batchrecs.jobs.parts import same_upload
from batchrecs.jobs.progress import JOB_COUNTERS

INFLIGHT_INDEX = "inflight-index"
SOURCE_INDEX = "source-index"
ROUTE_INDEX = "route-index"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class DynamoDBJobStore:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self._table = table_name
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("dynamodb")

    def claim(self, job: Job) -> Job:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(job),
                ConditionExpression="attribute_not_exists(jobName)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            if old:
                return _from_item(old)
            stored = self.get(job.jobName)
            if stored is None:  # deleted in between: extremely unlikely, let the retry sort it out
                raise
            return stored
        return job

    def get(self, job_name: str) -> Job | None:
        response = self._client.get_item(
            TableName=self._table, Key={"jobName": {"S": job_name}}, ConsistentRead=True
        )
        item = response.get("Item")
        return _from_item(item) if item else None

    def save(self, job: Job, expected_status: str) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(job),
                ConditionExpression="#status = :expected",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":expected": {"S": expected_status}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobConflictError(f"job {job.jobName} is no longer {expected_status}") from exc
            raise

    def record_chunk(self, job_name: str, chunk_id: str, counts: Mapping[str, int]) -> Job | None:
        names = JOB_COUNTERS
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"jobName": {"S": job_name}},
                UpdateExpression="ADD chunksDone :chunk, "
                + ", ".join(f"{names[k]} :{k}" for k in names)
                + " DELETE chunksFailed :chunk",
                ConditionExpression="attribute_exists(jobName) AND NOT contains(chunksDone, :id)",
                ExpressionAttributeValues={
                    ":chunk": {"SS": [chunk_id]},
                    ":id": {"S": chunk_id},
                    **{f":{k}": {"N": str(int(counts.get(k, 0)))} for k in names},
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(response["Attributes"])

    def set_chunks_total(self, job_name: str, total: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"jobName": {"S": job_name}},
                UpdateExpression="SET chunksTotal = :total",
                ConditionExpression="attribute_exists(jobName) AND attribute_not_exists(chunksTotal)",
                ExpressionAttributeValues={":total": {"N": str(total)}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise  # otherwise another delivery planned it first, with the same chunks

    def record_chunk_failure(self, job_name: str, chunk_id: str, reason: str) -> Job:
        response = self._client.update_item(
            TableName=self._table,
            Key={"jobName": {"S": job_name}},
            UpdateExpression="ADD chunksFailed :chunk SET #status = :failed, failureReason = :reason",
            ConditionExpression="attribute_exists(jobName) AND NOT contains(chunksDone, :id)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":chunk": {"SS": [chunk_id]},
                ":id": {"S": chunk_id},
                ":failed": {"S": EXPORT_FAILED},
                ":reason": {"S": reason[:1000]},
            },
            ReturnValues="ALL_NEW",
        )
        return _from_item(response["Attributes"])

    def newer_upload_exporting(self, job: Job) -> str | None:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=SOURCE_INDEX,
            KeyConditionExpression="sourceKey = :key AND createdAt >= :created",
            FilterExpression="attribute_exists(chunksTotal)",  # planned: it started exporting
            ExpressionAttributeValues={":key": {"S": job.sourceKey}, ":created": {"S": job.createdAt}},
        )
        for page in pages:
            for item in page.get("Items", []):
                name = str(item["jobName"]["S"])
                if (item["createdAt"]["S"], name) <= job.age:
                    continue
                if job.partOf is not None:  # another part of the same upload is not a newer upload
                    other = self.get(name)
                    if other is not None and same_upload(job, other):
                        continue
                return name
        return None

    def latest_export_before(self, job: Job) -> Job | None:
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=ROUTE_INDEX,
            KeyConditionExpression="#route = :route AND createdAt <= :created",
            ExpressionAttributeNames={"#route": "route"},
            ExpressionAttributeValues={":route": {"S": job.route}, ":created": {"S": job.createdAt}},
            ScanIndexForward=False,  # newest first: the previous export is usually the first one
        )
        for page in pages:
            for item in page.get("Items", []):
                if (item["createdAt"]["S"], item["jobName"]["S"]) >= job.age or item["status"][
                    "S"
                ] != EXPORTED:
                    continue
                found = self.get(item["jobName"]["S"])
                if found is not None and found.partOf is None:  # an upload in parts is its own job
                    return found
        return None

    def route_jobs(self, route: str, limit: int) -> list[tuple[str, str, str]]:
        """A route's newest ``limit`` jobs (name, status, createdAt), newest first, by its index."""
        found: list[tuple[str, str, str]] = []
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=ROUTE_INDEX,
            KeyConditionExpression="#route = :route",
            ExpressionAttributeNames={"#route": "route"},
            ExpressionAttributeValues={":route": {"S": route}},
            ScanIndexForward=False,
            PaginationConfig={"PageSize": min(max(limit, 1), 1000)},
        )
        for page in pages:
            for item in page.get("Items", []):
                found.append((item["jobName"]["S"], item["status"]["S"], item["createdAt"]["S"]))
                if len(found) >= limit:
                    return found
        return found

    def uploads_of(self, source_key: str) -> list[str]:
        """The jobs of the uploads of ``source_key`` (and their parts), newest first, by its index."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table,
            IndexName=SOURCE_INDEX,
            KeyConditionExpression="sourceKey = :key",
            ExpressionAttributeValues={":key": {"S": source_key}},
            ScanIndexForward=False,
        )
        return [item["jobName"]["S"] for page in pages for item in page.get("Items", [])]

    def get_many(self, names: list[str]) -> list[Job]:
        """The jobs named, in that order (BatchGetItem, 100 at a time; unprocessed keys asked again)."""
        found: dict[str, Job] = {}
        for start in range(0, len(names), 100):
            keys = [{"jobName": {"S": name}} for name in dict.fromkeys(names[start : start + 100])]
            while keys:
                response = self._client.batch_get_item(
                    RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}}
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    job = _from_item(item)
                    found[job.jobName] = job
                keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
                if keys:
                    time.sleep(0.1)  # the table is busy: ask again for what it left
        return [found[name] for name in names if name in found]

    def note_chunk_retry(self, job_name: str, reason: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"jobName": {"S": job_name}},
            UpdateExpression="SET chunkRetry = :reason",
            ConditionExpression="attribute_exists(jobName)",
            ExpressionAttributeValues={":reason": {"S": reason[:1000]}},
        )

    def inflight(self, state: Inflight) -> Iterator[Job]:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self._table,
            IndexName=INFLIGHT_INDEX,
            KeyConditionExpression="inflight = :state",
            ExpressionAttributeValues={":state": {"S": state}},
            ScanIndexForward=True,
        ):
            for item in page.get("Items", []):
                yield _from_item(item)


def _to_item(job: Job) -> dict[str, Any]:
    values = job.model_dump(exclude_none=True)
    return {name: _serializer.serialize(value) for name, value in values.items() if value != set()}


def _from_item(item: dict[str, Any]) -> Job:
    return Job.model_validate(
        {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}
    )


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the job model holds ints."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if type(value).__name__ == "Decimal":
        return int(value) if value == int(value) else float(value)
    return value
