"""Amazon Personalize batch inference and batch segment jobs, and the solution versions they use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NoConnection

from batchrecs.errors import (
    PersonalizeJobExists,
    PersonalizeLimitExceeded,
    PersonalizeRejected,
    PersonalizeRouteRefused,
    PersonalizeUnavailable,
)
from batchrecs.ports import SolutionVersions
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


@contextmanager
def _answers() -> Iterator[None]:
    """Personalize's answers as batchrecs' errors: "not now" (the limit, throttling, a 5xx, no answer)
    or "no" (any other error)."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", code)
        if code in ("LimitExceededException", "ResourceInUseException"):  # not now: retried later
            raise PersonalizeLimitExceeded(f"{code}: {message}") from exc
        if code == "ResourceAlreadyExistsException":
            raise PersonalizeJobExists(message) from exc
        if code in ("ResourceNotFoundException", "TooManyTagsException"):
            raise PersonalizeRouteRefused(f"{code}: {message}") from exc
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT or status >= 500:
            raise PersonalizeUnavailable(f"{code or status}: {message}") from exc
        raise PersonalizeRejected(f"{code}: {message}") from exc  # any other answer is a "no"
    except (NoConnection, HTTPClientError) as exc:  # no answer: connection refused, timeouts...
        raise PersonalizeUnavailable(f"{type(exc).__name__}: {exc}") from exc


class PersonalizeBatchJobs:
    def __init__(self, client: Any = None) -> None:
        self._given = client

    @cached_property
    def _client(self) -> Any:
        return self._given or boto3.client("personalize")

    def create(self, kind: JobKind, request: Mapping[str, Any]) -> str:
        with _answers():
            if kind.is_segment:
                return str(self._client.create_batch_segment_job(**request)["batchSegmentJobArn"])
            return str(self._client.create_batch_inference_job(**request)["batchInferenceJobArn"])

    def solution_versions(self, solution_arn: str) -> SolutionVersions:
        newest: tuple[Any, str] | None = None
        statuses: Counter[str] = Counter()
        pages = self._client.get_paginator("list_solution_versions").paginate(solutionArn=solution_arn)
        with _answers():
            for page in pages:
                for version in page.get("solutionVersions", []):
                    statuses[version["status"]] += 1
                    if version["status"] == "ACTIVE":
                        candidate = (version["creationDateTime"], version["solutionVersionArn"])
                        newest = max(newest, candidate) if newest else candidate
        return SolutionVersions(newest[1] if newest else None, dict(statuses))

    def start_data_import(
        self, name: str, dataset_arn: str, data_location: str, role_arn: str, mode: str
    ) -> str:
        request = {
            "jobName": name,
            "datasetArn": dataset_arn,
            "dataSource": {"dataLocation": data_location},
            "roleArn": role_arn,
            "importMode": mode,
        }
        try:
            with _answers():
                return str(self._client.create_dataset_import_job(**request)["datasetImportJobArn"])
        except PersonalizeJobExists:  # started on an earlier tick whose record was lost: the same job
            prefix = dataset_arn.split(":dataset/")[0]
            return f"{prefix}:dataset-import-job/{name}"

    def start_training(self, solution_arn: str, mode: str, name: str) -> str:
        try:
            with _answers():
                created = self._client.create_solution_version(
                    solutionArn=solution_arn, trainingMode=mode, name=name
                )
                return str(created["solutionVersionArn"])
        except PersonalizeJobExists:  # started on an earlier tick: find it by its name
            with _answers():
                pages = self._client.get_paginator("list_solution_versions").paginate(
                    solutionArn=solution_arn
                )
                for page in pages:
                    for summary in page.get("solutionVersions", []):
                        arn = summary["solutionVersionArn"]
                        described = self._client.describe_solution_version(solutionVersionArn=arn)
                        if described["solutionVersion"].get("name") == name:
                            return str(arn)
            raise PersonalizeRejected(f"solution version {name} exists but is not listed") from None

    def step_status(self, arn: str) -> tuple[str, str | None]:
        with _answers():
            if ":dataset-import-job/" in arn:
                found = self._client.describe_dataset_import_job(datasetImportJobArn=arn)["datasetImportJob"]
            else:
                found = self._client.describe_solution_version(solutionVersionArn=arn)["solutionVersion"]
        return str(found["status"]), found.get("failureReason")

    def describe(self, kind: JobKind, job_arn: str) -> tuple[str, str | None]:
        if kind.is_segment:
            job = self._client.describe_batch_segment_job(batchSegmentJobArn=job_arn)["batchSegmentJob"]
        else:
            job = self._client.describe_batch_inference_job(batchInferenceJobArn=job_arn)["batchInferenceJob"]
        return str(job["status"]), job.get("failureReason")
