"""How the Personalize adapter reads CreateBatch*Job's answers: "not now" (wait QUEUED and submit again)
or "no" (CREATE FAILED with the reason). Before, a throttled or failed call raised out of the submit
function, which retried and then left the job RECEIVED for ever."""

from __future__ import annotations

import boto3
import pytest
from batchrecs.aws.personalize import PersonalizeBatchJobs
from batchrecs.errors import (
    PersonalizeJobExists,
    PersonalizeLimitExceeded,
    PersonalizeRejected,
    PersonalizeUnavailable,
)
from batchrecs.routes.config import JobKind
from botocore.config import Config
from botocore.exceptions import ConnectTimeoutError
from botocore.stub import Stubber

REQUEST = {
    "jobName": "home-1",
    "solutionVersionArn": "arn:aws:personalize:us-east-1:123456789012:solution/home/1",
    "jobInput": {"s3DataSource": {"path": "s3://data/staged/home/home-1/u.jsonl"}},
    "jobOutput": {"s3DataDestination": {"path": "s3://data/output/home/home-1/"}},
    "roleArn": "arn:aws:iam::123456789012:role/personalize",
}


def _client() -> object:
    return boto3.client(
        "personalize",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("LimitExceededException", 400, PersonalizeLimitExceeded),
        ("ThrottlingException", 400, PersonalizeUnavailable),
        ("TooManyRequestsException", 429, PersonalizeUnavailable),
        ("InternalServerError", 500, PersonalizeUnavailable),
        ("ServiceUnavailable", 503, PersonalizeUnavailable),
        ("SomethingNew", 502, PersonalizeUnavailable),  # any 5xx
        ("ResourceAlreadyExistsException", 400, PersonalizeJobExists),
        ("InvalidInputException", 400, PersonalizeRejected),
        ("ResourceNotFoundException", 400, PersonalizeRejected),
        ("AccessDeniedException", 400, PersonalizeRejected),  # any other 4xx: a "no" with its reason
    ],
)
def test_each_answer_is_read_as_not_now_or_no(code: str, status: int, raised: type[Exception]) -> None:
    client = _client()
    with Stubber(client) as stubber:
        stubber.add_client_error("create_batch_inference_job", code, "the message", http_status_code=status)
        with pytest.raises(raised, match="the message"):
            PersonalizeBatchJobs(client).create(JobKind.USER_PERSONALIZATION, REQUEST)


def test_no_answer_at_all_is_not_now() -> None:
    client = _client()

    def timeout(**kwargs: object) -> None:
        raise ConnectTimeoutError(endpoint_url="https://personalize.us-east-1.amazonaws.com")

    client.meta.events.register("before-send.personalize.CreateBatchInferenceJob", timeout)  # type: ignore[attr-defined]
    with pytest.raises(PersonalizeUnavailable, match="ConnectTimeoutError"):
        PersonalizeBatchJobs(client).create(JobKind.USER_PERSONALIZATION, REQUEST)
