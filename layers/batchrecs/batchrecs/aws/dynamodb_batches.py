"""BatchWriteItem without botocore's per-call overhead: the signed transport the DynamoDB sink writes with.

botocore's client spends most of its time per call on validation, serialisation of nested
AttributeValues, endpoint rules and hooks. The sink's bodies are already DynamoDB wire JSON, so this
adapter signs each with botocore's own ``SigV4Auth`` (credentials, region and endpoint come from the
boto3 session, so profiles, roles and ``AWS_ENDPOINT_URL`` keep working), sends it over a keep-alive
``http.client`` connection per thread (urllib3's pool costs more per request than the signing does), and
checks the response as botocore would (CRC32 header, error type, ``UnprocessedItems``).
"""

from __future__ import annotations

import http.client
import socket
import threading
import zlib
from urllib.parse import urlsplit

import boto3
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from batchrecs.errors import BatchrecsError, DynamoDBError
from batchrecs.sinks.dynamodb.ports import BatchResult

_TARGET = "DynamoDB_20120810.BatchWriteItem"
_THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


class SignedBatchWriter:
    """Sends pre-built BatchWriteItem bodies, signed with SigV4, over one keep-alive connection per thread."""

    def __init__(self, session: boto3.Session | None = None, timeout: float = 30.0) -> None:
        session = session or boto3.Session()
        meta = session.client("dynamodb").meta  # resolves region and endpoint exactly as boto3 does
        self._url = meta.endpoint_url.rstrip("/") + "/"
        self._region = meta.region_name
        self._credentials = session.get_credentials()
        if self._credentials is None:
            raise BatchrecsError("no AWS credentials found for DynamoDB")
        url = urlsplit(self._url)
        self._path = url.path or "/"
        connection = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self._connect = lambda: connection(url.hostname, url.port, timeout=timeout)  # noqa: E731
        self._local = threading.local()

    def write(self, body: bytes) -> BatchResult:
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=body,
            headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": _TARGET},
        )
        SigV4Auth(self._credentials.get_frozen_credentials(), "dynamodb", self._region).add_auth(request)
        headers = dict(request.headers.items())
        # A kept-alive connection the server has closed fails on first use: one fresh retry (the
        # request is idempotent: puts of the same items).
        for attempt in (1, 2):
            reused = getattr(self._local, "connection", None) is not None
            try:
                status, crc32, data = self._send(body, headers)
                break
            except (OSError, http.client.HTTPException) as exc:
                self._local.connection.close()
                self._local.connection = None
                if not reused or attempt == 2:
                    raise DynamoDBError("ConnectionError", str(exc), retryable=True) from exc
        return parse_response(status, crc32, data)

    def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.request("POST", self._path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            connection.close()
            self._local.connection = None
        return response.status, response.getheader("x-amz-crc32"), data


def parse_response(status: int, crc32: str | None, data: bytes) -> BatchResult:
    """Check a BatchWriteItem response as botocore does: CRC32, error type, unprocessed items."""
    if crc32 is not None and int(crc32) != zlib.crc32(data):
        raise DynamoDBError(
            "CRC32CheckFailed", "response body does not match its x-amz-crc32", retryable=True
        )
    try:
        payload = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError as exc:
        raise DynamoDBError("InvalidResponse", f"HTTP {status}: not JSON", retryable=status >= 500) from exc
    if status != 200:
        code = str(payload.get("__type", f"HTTP{status}")).rsplit("#", 1)[-1]
        message = str(payload.get("message") or payload.get("Message") or "")
        raise DynamoDBError(code, message, retryable=code in _THROTTLED or status >= 500)
    unprocessed = payload.get("UnprocessedItems") or {}
    return BatchResult([request for requests in unprocessed.values() for request in requests])
