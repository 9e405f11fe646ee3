"""The training side of the local Personalize: the interactions dataset, dataset import jobs, and
solution versions that really retrain the local recommender.

- ``CreateDatasetImportJob`` reads a CSV (``USER_ID,ITEM_ID,TIMESTAMP``, header first) from the local S3
  as Personalize would (as ``personalize.amazonaws.com`` with the job's role: the role and the bucket
  policy must both allow it) into the local interactions dataset: ``FULL`` replaces it, ``INCREMENTAL``
  adds to it. A bad file fails the job (CREATE FAILED) with the line and the reason.
- ``CreateSolutionVersion`` trains a new version of a solution on the dataset as it is when training
  starts: a new item-item model (``Recommender``), so the new version recommends differently when the
  interactions changed. One version of a solution trains at a time, and none while an import runs
  (``ResourceInUseException``, as the seed-004 pipeline meets it and retries).
- ``ListSolutionVersions`` (newest first, paged) and ``DescribeSolutionVersion``.

Statuses move CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE (or CREATE FAILED) over the emulator's
timings.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchrecs_local.iam import Authorizer
from batchrecs_local.iam.policy import Request
from batchrecs_local.personalize.recommender import Dataset, Recommender

PENDING, IN_PROGRESS, ACTIVE, FAILED = "CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE", "CREATE FAILED"
RUNNING = (PENDING, IN_PROGRESS)
TRAINING_MODES = ("FULL", "UPDATE")
IMPORT_MODES = ("FULL", "INCREMENTAL")
REQUIRED_COLUMNS = ("USER_ID", "ITEM_ID", "TIMESTAMP")
MIN_INTERACTIONS, MIN_USERS = 1000, 25


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class SolutionVersion:
    """One trained model of a solution: the jobs that name it use its recommender."""

    arn: str
    recipe: str
    recommender: Recommender | None  # None until trained
    name: str | None = None
    status: str = ACTIVE
    training_mode: str = "FULL"
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @property
    def solution_arn(self) -> str:
        return self.arn.rsplit("/", 1)[0]

    def summary(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "solutionVersionArn": self.arn,
            "status": self.status,
            "trainingMode": self.training_mode,
            "trainingType": "MANUAL",
            "creationDateTime": self.created,
            "lastUpdatedDateTime": self.updated,
        }
        if self.failure_reason:
            body["failureReason"] = self.failure_reason
        return body


@dataclass
class ImportJob:
    arn: str
    name: str
    dataset_arn: str
    data_location: str
    role_arn: str
    mode: str
    status: str = PENDING
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobName": self.name,
            "datasetImportJobArn": self.arn,
            "datasetArn": self.dataset_arn,
            "dataSource": {"dataLocation": self.data_location},
            "roleArn": self.role_arn,
            "importMode": self.mode,
            "status": self.status,
            "creationDateTime": self.created,
            "lastUpdatedDateTime": self.updated,
        }
        if self.failure_reason:
            body["failureReason"] = self.failure_reason
        return body


class Training:
    def __init__(
        self,
        first: Recommender,  # every solution's version 1, trained on the generated dataset
        recipes: list[str],
        s3_client: Callable[[], Any],
        region: str,
        account: str,
        seconds: Callable[[], tuple[float, float]],  # (pending, running)
        authorizer: Authorizer | None,
        stopping: threading.Event,
        changed: threading.Event,
    ) -> None:
        self.dataset: Dataset = first.dataset
        self._s3_client = s3_client
        self._region = region
        self._account = account
        self._seconds = seconds
        self._iam = authorizer
        self._stopping = stopping
        self._changed = changed
        self._lock = threading.Lock()
        self.interactions_dataset = f"arn:aws:personalize:{region}:{account}:dataset/local/INTERACTIONS"
        self.versions: dict[str, SolutionVersion] = {}
        for recipe in recipes:
            arn = f"{self.solution_arn(recipe)}/1"
            self.versions[arn] = SolutionVersion(arn, recipe, first)
        self.imports: dict[str, ImportJob] = {}

    def solution_arn(self, recipe: str) -> str:
        return (
            f"arn:aws:personalize:{self._region}:{self._account}:solution/local-{recipe.removeprefix('aws-')}"
        )

    def version(self, arn: str) -> SolutionVersion | None:
        with self._lock:
            return self.versions.get(arn)

    # ------------------------------------------------------------------ solution versions

    def list_solution_versions(self, body: dict[str, Any]) -> dict[str, Any]:
        """Newest first, ``maxResults`` (1-100, default 100) a page, as ListSolutionVersions pages."""
        solution = body.get("solutionArn")
        with self._lock:
            if solution is not None and not any(v.solution_arn == solution for v in self.versions.values()):
                raise ApiError("ResourceNotFoundException", f"Could not find solution with ARN {solution}")
            versions = [v for v in self.versions.values() if solution is None or v.solution_arn == solution]
        versions.sort(key=lambda v: v.created, reverse=True)
        return page("solutionVersions", [v.summary() for v in versions], body)

    def describe_solution(self, body: dict[str, Any]) -> dict[str, Any]:
        """The solution, with its newest version as ``latestSolutionVersion`` (whatever its status)."""
        solution = required(body, "solutionArn")
        with self._lock:
            versions = sorted(
                (v for v in self.versions.values() if v.solution_arn == solution), key=lambda v: v.created
            )
        if not versions:
            raise ApiError("ResourceNotFoundException", f"Could not find solution with ARN {solution}")
        return {
            "solution": {
                "name": solution.rsplit("/", 1)[-1],
                "solutionArn": solution,
                "recipeArn": f"arn:aws:personalize:::recipe/{versions[0].recipe}",
                "status": ACTIVE,
                "creationDateTime": versions[0].created,
                "lastUpdatedDateTime": versions[-1].updated,
                "latestSolutionVersion": versions[-1].summary(),
            }
        }

    def describe_solution_version(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = required(body, "solutionVersionArn")
        version = self.version(arn)
        if version is None:
            raise ApiError("ResourceNotFoundException", f"Could not find solution version with ARN {arn}")
        described = {**version.summary(), "solutionArn": version.solution_arn}
        return {"solutionVersion": {**described, **({"name": version.name} if version.name else {})}}

    def create_solution_version(self, body: dict[str, Any]) -> dict[str, Any]:
        solution = required(body, "solutionArn")
        mode = body.get("trainingMode", "FULL")
        if mode not in TRAINING_MODES:
            raise ApiError("InvalidInputException", f"trainingMode {mode!r} is not FULL or UPDATE")
        with self._lock:
            existing = [v for v in self.versions.values() if v.solution_arn == solution]
            if not existing:
                raise ApiError("ResourceNotFoundException", f"Could not find solution with ARN {solution}")
            name = body.get("name")
            if name is not None and any(v.name == name for v in existing):
                raise ApiError(
                    "ResourceAlreadyExistsException", f"A solution version named {name} already exists"
                )
            importing = any(job.status in RUNNING for job in self.imports.values())
            if importing or any(v.status in RUNNING for v in existing):
                raise ApiError(
                    "ResourceInUseException",
                    f"A solution version of {solution} is being created, or its dataset group's data is "
                    "being imported: try again when it is done",
                )
            arn = f"{solution}/{len(existing) + 1}"
            version = SolutionVersion(arn, existing[0].recipe, None, name, status=PENDING, training_mode=mode)
            self.versions[arn] = version
        self._start(self._train, version)
        return {"solutionVersionArn": arn}

    def _train(self, version: SolutionVersion) -> None:
        with self._lock:
            data = self.dataset  # the dataset as it is when training starts
        # Personalize's minimum ("Training data requirements"): 1,000 interactions, 25 users with 2 each
        users = Counter(user for user, _, _ in data.interactions)
        if len(data.interactions) < MIN_INTERACTIONS or sum(n >= 2 for n in users.values()) < MIN_USERS:
            raise ApiError(
                FAILED,
                f"Insufficient data: {len(data.interactions)} interactions from {len(users)} users; at least "
                f"{MIN_INTERACTIONS} interactions and {MIN_USERS} users with 2 or more are needed",
            )
        model = Recommender(data)
        with self._lock:
            version.recommender = model

    # ------------------------------------------------------------------ dataset import jobs

    def create_dataset_import_job(self, body: dict[str, Any]) -> dict[str, Any]:
        name = required(body, "jobName")
        dataset = required(body, "datasetArn")
        location = required(body.get("dataSource") or {}, "dataLocation", "dataSource.dataLocation")
        role = required(body, "roleArn")
        mode = body.get("importMode", "FULL")
        if mode not in IMPORT_MODES:
            raise ApiError("InvalidInputException", f"importMode {mode!r} is not FULL or INCREMENTAL")
        if dataset != self.interactions_dataset:
            raise ApiError("ResourceNotFoundException", f"Could not find dataset with ARN {dataset}")
        if not location.startswith("s3://"):
            raise ApiError("InvalidInputException", f"{location} is not an S3 path")
        arn = f"arn:aws:personalize:{self._region}:{self._account}:dataset-import-job/{name}"
        with self._lock:
            if arn in self.imports:
                raise ApiError("ResourceAlreadyExistsException", f"A job with the name {name} already exists")
            if any(j.status in RUNNING for j in self.imports.values()):
                raise ApiError("ResourceInUseException", f"Dataset {dataset} has an import job running")
            job = ImportJob(arn, name, dataset, location, role, mode)
            self.imports[arn] = job
        self._start(self._import, job)
        return {"datasetImportJobArn": arn}

    def describe_dataset_import_job(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = required(body, "datasetImportJobArn")
        with self._lock:
            job = self.imports.get(arn)
        if job is None:
            raise ApiError("ResourceNotFoundException", f"Could not find dataset import job with ARN {arn}")
        return {"datasetImportJob": job.describe()}

    def _import(self, job: ImportJob) -> None:
        bucket, _, key = job.data_location.removeprefix("s3://").partition("/")
        if key.endswith("/"):
            raise ApiError(
                FAILED, f"{job.data_location}: importing a folder is not emulated locally, name a file"
            )
        self._check_access(job, bucket, key)
        try:
            body = self._s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001 - any failure to read is the job's failure reason
            raise ApiError(FAILED, f"Could not read {job.data_location}: {exc}") from exc
        rows = parse_interactions(body)
        with self._lock:
            self.dataset = self.dataset.with_interactions(rows, replace=job.mode == "FULL")

    def _check_access(self, job: ImportJob, bucket: str, key: str) -> None:
        if self._iam is None:
            return
        source = {"aws:SourceAccount": self._account, "aws:SourceArn": job.arn}
        needs = [Request("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")]
        denial = self._iam.check_service("personalize.amazonaws.com", job.role_arn, needs, source)
        if denial is not None:
            raise ApiError(FAILED, f"Insufficient privileges for accessing data in S3 ({denial.message()})")

    # ------------------------------------------------------------------ running

    def _start(self, work: Callable[[Any], None], resource: SolutionVersion | ImportJob) -> None:
        def run() -> None:
            pending, running = self._seconds()
            if self._stopping.wait(pending):
                return
            self._set(resource, IN_PROGRESS)
            started = time.monotonic()
            try:
                work(resource)
            except ApiError as exc:
                self._set(resource, FAILED, exc.message)
                return
            if self._stopping.wait(max(0.0, running - (time.monotonic() - started))):
                return
            self._set(resource, ACTIVE)

        threading.Thread(
            target=run, daemon=True, name=f"personalize-{resource.arn.rsplit('/', 1)[-1]}"
        ).start()

    def _set(self, resource: SolutionVersion | ImportJob, status: str, reason: str | None = None) -> None:
        with self._lock:
            resource.status, resource.failure_reason, resource.updated = status, reason, time.time()
        self._changed.set()


def parse_interactions(body: bytes) -> list[tuple[str, str, int]]:
    """The rows of an interactions CSV; a bad file is the import job's failure, naming the line."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(FAILED, f"The file is not UTF-8 (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text))
    header = [column.strip().upper() for column in next(reader, [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ApiError(FAILED, f"The header has no {', '.join(missing)} column (found: {', '.join(header)})")
    user, item, stamp = (header.index(column) for column in REQUIRED_COLUMNS)
    rows = []
    for number, row in enumerate(reader, 2):
        if not row:
            continue
        try:
            rows.append((row[user], row[item], int(row[stamp])))
        except (IndexError, ValueError):
            raise ApiError(
                FAILED, f"Line {number}: expected USER_ID, ITEM_ID and an integer TIMESTAMP"
            ) from None
    return rows


def page(field: str, items: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
    """One page of a List* answer: ``maxResults`` (1-100, default 100, the API model's MaxResults) items
    from where ``nextToken`` says, and a ``nextToken`` while more are left (opaque to callers)."""
    size = body.get("maxResults", 100)
    if not isinstance(size, int) or not 1 <= size <= 100:
        raise ApiError("InvalidInputException", f"maxResults {size} is not between 1 and 100")
    token = body.get("nextToken") or "0"
    if not token.isdigit():
        raise ApiError("InvalidNextTokenException", f"nextToken {token!r} was not given by this API")
    start = int(token)
    answer: dict[str, Any] = {field: items[start : start + size]}
    if start + size < len(items):
        answer["nextToken"] = str(start + size)
    return answer


def required(body: dict[str, Any], name: str, label: str | None = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError("InvalidInputException", f"{label or name} is required")
    return value
