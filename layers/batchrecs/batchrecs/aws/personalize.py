"""Amazon Personalize batch inference and batch segment jobs."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnection

from batchrecs.errors import (
    PersonalizeJobExists,
    PersonalizeLimitExceeded,
    PersonalizeRejected,
    PersonalizeUnavailable,
)
from batchrecs.routes.config import JobKind

# Answers that say "not now" rather than "no": the job waits QUEUED and the monitor submits it again.
_TRANSIENT = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
    "RequestTimeoutException",
}


class PersonalizeBatchJobs:
    def __init__(self, client: Any = None) -> None:
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("personalize")

    def create(self, kind: JobKind, request: Mapping[str, Any]) -> str:
        try:
            if kind.is_segment:
                return str(self._client.create_batch_segment_job(**request)["batchSegmentJobArn"])
            return str(self._client.create_batch_inference_job(**request)["batchInferenceJobArn"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", code)
            if code == "LimitExceededException":
                raise PersonalizeLimitExceeded(message) from exc
            if code == "ResourceAlreadyExistsException":
                raise PersonalizeJobExists(message) from exc
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _TRANSIENT or status >= 500:
                raise PersonalizeUnavailable(f"{code or status}: {message}") from exc
            raise PersonalizeRejected(f"{code}: {message}") from exc  # any other answer is a "no"
        except (NoConnection, HTTPClientError) as exc:  # no answer: connection refused, timeouts...
            raise PersonalizeUnavailable(f"{type(exc).__name__}: {exc}") from exc

    def describe(self, kind: JobKind, job_arn: str) -> tuple[str, str | None]:
        if kind.is_segment:
            job = self._client.describe_batch_segment_job(batchSegmentJobArn=job_arn)["batchSegmentJob"]
        else:
            job = self._client.describe_batch_inference_job(batchInferenceJobArn=job_arn)["batchInferenceJob"]
        return str(job["status"]), job.get("failureReason")
