"""What moto's SES v2 lacks, over the real REST-JSON wire protocol: contact import jobs and SES's
contact-list limits.

- ``CreateImportJob`` / ``GetImportJob`` / ``ListImportJobs``: a job reads its NDJSON file from the
  local S3 (``emailAddress``, ``topicPreferences``, ``unsubscribeAll``, ``attributesData`` as a JSON
  string) and PUTs every contact into the local contact list, which moto keeps: a contact that exists
  is overwritten with the file's values, a new one is created. Bad records are counted as failed.
  Jobs go CREATED -> PROCESSING -> COMPLETED (or FAILED when the file cannot be read); the failed
  records of a completed job, with their errors, are at ``FailureInfo.FailedRecordsS3Url``.
- ``CreateContactList`` is refused when the account already has one, and a list with more than 20
  topics (created or updated) is refused: SES allows one contact list per account, 20 topics each.

Everything else under ``/v2/email/`` goes on to moto.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from moto.core.exceptions import JsonRESTError

from batchrecs_local.iam import Authorizer
from batchrecs_local.iam.policy import Request

MAX_TOPICS = 20
FAILED_RECORDS_BUCKET = "ses-import-failed-records"  # stands for SES's own storage
REGION = "us-east-1"  # the local endpoint's region
IMPORT_JOBS = "/v2/email/import-jobs"
CONTACT_LISTS = "/v2/email/contact-lists"
_STATUSES = {"OPT_IN", "OPT_OUT"}


class SesError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class ImportJob:
    job_id: str
    destination: dict[str, Any]
    source: dict[str, Any]
    status: str = "CREATED"
    created: float = field(default_factory=time.time)
    completed: float | None = None
    processed: int = 0
    failed: int = 0
    failure: str | None = None
    failed_records_url: str | None = None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "JobId": self.job_id,
            "ImportDestination": self.destination,
            "ImportDataSource": self.source,
            "JobStatus": self.status,
            "CreatedTimestamp": self.created,
            "ProcessedRecordsCount": self.processed,
            "FailedRecordsCount": self.failed,
        }
        if self.completed is not None:
            described["CompletedTimestamp"] = self.completed
        failure = {"ErrorMessage": self.failure, "FailedRecordsS3Url": self.failed_records_url}
        if any(failure.values()):
            described["FailureInfo"] = {key: value for key, value in failure.items() if value}
        return described


class SesEmulator:
    def __init__(
        self,
        client: Callable[[str], Any],
        account: str,
        delay: float = 0.5,
        authorizer: Authorizer | None = None,
        changed: threading.Event | None = None,
    ) -> None:
        self._client = client  # boto3 clients of this endpoint (S3 to read files)
        self._account = account  # whose contact lists (in moto) the jobs import into
        self.changed = changed or threading.Event()  # set when an import job ends
        self._delay = delay
        self._iam = authorizer  # ses.amazonaws.com reads the file only if the bucket policy lets it
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def handles(self, environ: dict[str, Any]) -> bool:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD")
        return path.startswith(IMPORT_JOBS) or (
            path.startswith(CONTACT_LISTS)
            and path.count("/") == (3 if method == "POST" else 4)
            and method in ("POST", "PUT")
        )

    def __call__(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        forward: Callable[..., Iterable[bytes]],
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        try:
            body = json.loads(raw or b"{}")
            if path.startswith(CONTACT_LISTS):
                self._check_list_limits(body, creating=method == "POST")
                environ["wsgi.input"] = io.BytesIO(raw)
                return forward(environ, start_response)
            status, payload = self._import_jobs(method, path, body)
        except SesError as exc:
            status, payload = exc.status, {"message": exc.message}
            start_response(f"{status} Error", _headers(payload, exc.code))
            return [json.dumps(payload).encode()]
        start_response(f"{status} OK", _headers(payload))
        return [json.dumps(payload).encode()]

    # ------------------------------------------------------------------ contact lists

    def _check_list_limits(self, body: dict[str, Any], creating: bool) -> None:
        if len(body.get("Topics") or []) > MAX_TOPICS:
            raise SesError(
                400, "LimitExceededException", f"A contact list can have at most {MAX_TOPICS} topics"
            )
        if creating and self._client("sesv2").list_contact_lists().get("ContactLists"):
            raise SesError(400, "LimitExceededException", "Only one contact list is allowed per account")

    # ------------------------------------------------------------------ import jobs

    def _import_jobs(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "POST" and path == IMPORT_JOBS:
            return 200, {"JobId": self._create(body).job_id}
        if method == "POST" and path == f"{IMPORT_JOBS}/list":
            with self._lock:
                jobs = sorted(self._jobs.values(), key=lambda job: job.created)
            summaries = [
                {
                    key: value
                    for key, value in job.describe().items()
                    if key not in ("ImportDataSource", "FailureInfo", "CompletedTimestamp")
                }
                for job in jobs
            ]
            return 200, {"ImportJobs": summaries}
        match = re.fullmatch(rf"{IMPORT_JOBS}/([^/]+)", path)
        if method == "GET" and match:
            with self._lock:
                job = self._jobs.get(match.group(1))
            if job is None:
                raise SesError(404, "NotFoundException", f"Import job {match.group(1)} does not exist")
            return 200, job.describe()
        raise SesError(404, "NotFoundException", f"{method} {path} is not emulated locally")

    def _create(self, body: dict[str, Any]) -> ImportJob:
        destination = body.get("ImportDestination") or {}
        source = body.get("ImportDataSource") or {}
        target = destination.get("ContactListDestination")
        if not target or target.get("ContactListImportAction") not in ("PUT", "DELETE"):
            raise SesError(
                400, "BadRequestException", "Only ContactListDestination (PUT or DELETE) is emulated"
            )
        if not str(source.get("S3Url", "")).startswith("s3://") or source.get("DataFormat") not in (
            "JSON",
            "CSV",
        ):
            raise SesError(400, "BadRequestException", "ImportDataSource needs an s3:// S3Url and DataFormat")
        try:
            self._client("sesv2").get_contact_list(ContactListName=target.get("ContactListName", ""))
        except ClientError as exc:
            raise SesError(
                404, "NotFoundException", f"List with name: {target.get('ContactListName')} doesn't exist"
            ) from exc
        job = ImportJob(str(uuid.uuid4()), destination, source)
        with self._lock:
            self._jobs[job.job_id] = job
        threading.Thread(
            target=self._run, args=(job,), daemon=True, name=f"ses-import-{job.job_id[:8]}"
        ).start()
        return job

    def _run(self, job: ImportJob) -> None:
        try:
            self._import(job)
        finally:
            self.changed.set()

    def _import(self, job: ImportJob) -> None:
        time.sleep(self._delay)
        job.status = "PROCESSING"
        target = job.destination["ContactListDestination"]
        try:
            if job.source["DataFormat"] != "JSON":
                raise ValueError("only the JSON (NDJSON) data format is emulated")
            bucket, _, key = job.source["S3Url"].removeprefix("s3://").partition("/")
            self._check_access(job, bucket, key)
            data = self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except (ClientError, ValueError) as exc:
            job.failure, job.status, job.completed = (
                f"Could not read {job.source['S3Url']}: {exc}",
                "FAILED",
                time.time(),
            )
            return
        contacts = _contact_list(self._account, target["ContactListName"])
        topics = {topic["TopicName"] for topic in contacts.topics or []}
        failed: list[bytes] = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                self._apply(
                    contacts, topics, json.loads(line), delete=target["ContactListImportAction"] == "DELETE"
                )
                job.processed += 1
            except (ValueError, JsonRESTError) as exc:
                job.failed += 1
                failed.append(
                    json.dumps({"record": line.decode("utf-8", "replace"), "error": str(exc)}).encode()
                )
        if failed:
            job.failed_records_url = self._failed_records(job, failed)
        job.status, job.completed = "COMPLETED", time.time()

    def _failed_records(self, job: ImportJob, lines: list[bytes]) -> str:
        """As SES does: the failed records and why, in a file of SES's own, at a presigned URL."""
        s3 = self._client("s3")
        with contextlib.suppress(ClientError):  # made by an earlier job
            s3.create_bucket(Bucket=FAILED_RECORDS_BUCKET)
        key = f"{job.job_id}/failed-records.jsonl"
        s3.put_object(Bucket=FAILED_RECORDS_BUCKET, Key=key, Body=b"\n".join(lines) + b"\n")
        return str(
            s3.generate_presigned_url("get_object", Params={"Bucket": FAILED_RECORDS_BUCKET, "Key": key})
        )

    def _check_access(self, job: ImportJob, bucket: str, key: str) -> None:
        """SES reads the import file as ses.amazonaws.com: only what the bucket policy grants it."""
        if self._iam is None:
            return
        account = self._iam.account
        source = {
            "aws:SourceAccount": account,
            "aws:SourceArn": f"arn:aws:ses:{REGION}:{account}:import-job/{job.job_id}",
        }
        read = Request("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
        # an SSE-KMS bucket: the key's policy must let SES decrypt (SES has no role here)
        needs = [read, *self._iam.key_requests(read, REGION)]
        denial = self._iam.check_service("ses.amazonaws.com", None, needs, source)
        if denial is not None:
            raise ValueError(f"Access denied: {denial.message()}")

    @staticmethod
    def _apply(contacts: Any, topics: set[str], record: Any, delete: bool) -> None:
        """PUT one record: the contact gets exactly the record's values (it is overwritten if it exists)."""
        if not isinstance(record, dict) or not isinstance(record.get("emailAddress"), str):
            raise ValueError("record without emailAddress")
        email = record["emailAddress"]
        if delete:
            contacts.delete_contact(email)  # NotFoundException when there is none
            return
        fields: dict[str, Any] = {}
        if "topicPreferences" in record:
            preferences = record["topicPreferences"]
            if not isinstance(preferences, list) or not all(
                isinstance(p, dict)
                and p.get("topicName") in topics
                and p.get("subscriptionStatus") in _STATUSES
                for p in preferences
            ):
                raise ValueError("topicPreferences must name topics of the list with OPT_IN or OPT_OUT")
            fields["TopicPreferences"] = [
                {"TopicName": p["topicName"], "SubscriptionStatus": p["subscriptionStatus"]}
                for p in preferences
            ]
        if "unsubscribeAll" in record:
            if not isinstance(record["unsubscribeAll"], bool):
                raise ValueError("unsubscribeAll must be true or false")
            fields["UnsubscribeAll"] = record["unsubscribeAll"]
        if "attributesData" in record:
            if not isinstance(record["attributesData"], str):
                raise ValueError("attributesData must be a JSON string")
            json.loads(record["attributesData"])
            fields["AttributesData"] = record["attributesData"]
        # the request bodies of CreateContact and UpdateContact, as moto's handlers pass them on
        if email in contacts.contacts:
            contacts.update_contact(email, fields)
        else:
            contacts.create_contact(contacts.contact_list_name, {"EmailAddress": email, **fields})


def _contact_list(account: str, name: str) -> Any:
    """The contact list as moto keeps it. An import job writes into it as SES does, inside the service:
    through the API, two calls a contact were most of an import's time (0.6 s of the demo's 40 contacts)."""
    from moto.sesv2.models import sesv2_backends

    return sesv2_backends[account][REGION].get_contact_list(name)


def _headers(payload: dict[str, Any], error: str | None = None) -> list[tuple[str, str]]:
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(json.dumps(payload).encode()))),
    ]
    if error:
        headers.append(("x-amzn-ErrorType", error))
    return headers
