"""S3 objects: streamed reads, listing, small JSON writes and streaming multipart uploads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
import orjson
from botocore.exceptions import ClientError

from batchrecs.errors import ObjectChangedError

READ_CHUNK = 1 << 20
_GONE = {"PreconditionFailed", "412", "NoSuchVersion", "NoSuchKey", "404"}  # not that object any more
PART_SIZE = 8 << 20  # S3 parts are at least 5 MiB, except the last


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


class S3Objects:
    def __init__(self, client: Any = None) -> None:
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("s3")

    def iter_chunks(
        self, bucket: str, key: str, version_id: str | None = None, if_match: str | None = None
    ) -> Iterator[bytes]:
        """Stream the object (that version of it, if it still has that ETag, when given)."""
        expected = {"VersionId": version_id} if version_id else {}
        expected |= {"IfMatch": if_match} if if_match else {}
        yield from self._read(bucket, key, "it was uploaded", **expected)

    def iter_range(self, bucket: str, key: str, start: int, if_match: str) -> Iterator[bytes]:
        yield from self._read(
            bucket, key, "the export was planned", Range=f"bytes={start}-", IfMatch=if_match
        )

    def _read(self, bucket: str, key: str, since: str, **options: str) -> Iterator[bytes]:
        try:
            body = self._client.get_object(Bucket=bucket, Key=key, **options)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _GONE and (options.keys() & {"IfMatch", "VersionId"}):
                raise ObjectChangedError(f"s3://{bucket}/{key} changed since {since}") from exc
            raise
        try:
            yield from body.iter_chunks(READ_CHUNK)
        finally:
            body.close()

    def list_keys(self, bucket: str, prefix: str, suffix: str = "") -> list[str]:
        return [info.key for info in self.list_objects(bucket, prefix, suffix)]

    def list_objects(self, bucket: str, prefix: str, suffix: str = "") -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(
                ObjectInfo(item["Key"], int(item["Size"]), item["ETag"])
                for item in page.get("Contents", [])
                if item["Key"].endswith(suffix)
            )
        return sorted(found, key=lambda info: info.key)

    def put_json(self, bucket: str, key: str, value: Mapping[str, Any]) -> None:
        body = orjson.dumps(value, option=orjson.OPT_INDENT_2)
        self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    def writer(self, bucket: str, key: str, content_type: str) -> MultipartWriter:
        return MultipartWriter(self._client, bucket, key, content_type)


class MultipartWriter:
    """Upload an object of unknown size part by part; small objects become one PutObject."""

    def __init__(
        self, client: Any, bucket: str, key: str, content_type: str, part_size: int = PART_SIZE
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._content_type = content_type
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= self._part_size:
            self._upload_part()

    def close(self) -> None:
        if self._upload_id is None:
            self._client.put_object(
                Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer), ContentType=self._content_type
            )
            return
        if self._buffer:
            self._upload_part()
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
        self._buffer.clear()

    def _upload_part(self) -> None:
        if self._upload_id is None:
            response = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=self._content_type
            )
            self._upload_id = response["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buffer.clear()
