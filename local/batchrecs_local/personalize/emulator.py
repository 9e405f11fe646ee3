"""Personalize batch inference and batch segment jobs over the real JSON 1.1 wire protocol.

Unchanged boto3 code reaches it through ``AWS_ENDPOINT_URL``: the endpoint sends requests whose
``X-Amz-Target`` starts with ``AmazonPersonalize.`` here. Jobs move CREATE PENDING -> CREATE IN_PROGRESS
-> ACTIVE (or CREATE FAILED) over configurable time, read their input from S3 and write
``<input file name>.out`` under the output path, one JSON line per input line, as Personalize does.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from batchrecs_local.iam import Authorizer
from batchrecs_local.iam.policy import Request
from batchrecs_local.personalize.recommender import Recommender
from batchrecs_local.personalize.training import ApiError, Training, page, required

TARGET_PREFIX = "AmazonPersonalize."
PENDING = "CREATE PENDING"
IN_PROGRESS = "CREATE IN_PROGRESS"
ACTIVE = "ACTIVE"
FAILED = "CREATE FAILED"
JOB_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")
KMS_KEY_ARN = re.compile(r"arn:aws.*:kms:.*:[0-9]{12}:key/.*")  # the API model's kmsKeyArn (S3DataConfig)
ROLE_ARN = re.compile(r"arn:([a-z\d-]+):iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")  # botocore's RoleArn
DEFAULT_RESULTS = {"inference": 25, "segment": 100}

# recipe -> (job type it serves, the input field it needs)
RECIPES: dict[str, tuple[str, str]] = {
    "aws-user-personalization": ("inference", "userId"),
    "aws-popularity-count": ("inference", "userId"),
    "aws-similar-items": ("inference", "itemId"),
    "aws-personalized-ranking": ("inference", "userId"),
    "aws-item-affinity": ("segment", "itemId"),
    "aws-item-attribute-affinity": ("segment", "itemAttributes"),
}
# route kind -> recipe of the local solution version for it
KIND_RECIPES = {
    "user-personalization": "aws-user-personalization",
    "popularity": "aws-popularity-count",
    "related-items": "aws-similar-items",
    "personalized-ranking": "aws-personalized-ranking",
    "item-affinity": "aws-item-affinity",
    "item-attribute-affinity": "aws-item-attribute-affinity",
}


@dataclass(frozen=True)
class Timings:
    """Seconds a job spends in CREATE PENDING and in CREATE IN_PROGRESS."""

    pending: float = 1.0
    running: float = 1.0


@dataclass
class EmulatedJob:
    kind: str  # "inference" | "segment"
    arn: str
    name: str
    solution_version_arn: str
    recipe: str
    input_path: str
    output_path: str
    role_arn: str
    num_results: int | None
    filter_arn: str | None
    config: dict[str, Any] | None
    theme_item_name: str | None = None  # THEME_GENERATION: the Items field themes are named from
    input_key: str | None = None  # kmsKeyArn of jobInput.s3DataSource / jobOutput.s3DataDestination
    output_key: str | None = None
    status: str = PENDING
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        prefix = "batchInferenceJob" if self.kind == "inference" else "batchSegmentJob"
        body: dict[str, Any] = {
            "jobName": self.name,
            f"{prefix}Arn": self.arn,
            "solutionVersionArn": self.solution_version_arn,
            "jobInput": {"s3DataSource": _s3_config(self.input_path, self.input_key)},
            "jobOutput": {"s3DataDestination": _s3_config(self.output_path, self.output_key)},
            "roleArn": self.role_arn,
            "status": self.status,
            "creationDateTime": self.created,
            "lastUpdatedDateTime": self.updated,
        }
        if self.num_results is not None:
            body["numResults"] = self.num_results
        if self.filter_arn:
            body["filterArn"] = self.filter_arn
        if self.failure_reason:
            body["failureReason"] = self.failure_reason
        if self.config:
            body["batchInferenceJobConfig"] = self.config
        if self.kind == "inference":  # the API model's BatchInferenceJob has the mode, the theme config
            body["batchInferenceJobMode"] = self.mode
        if self.theme_item_name is not None:
            body["themeGenerationConfig"] = {"fieldsForThemeGeneration": {"itemName": self.theme_item_name}}
        return body

    @property
    def mode(self) -> str:
        return "BATCH_INFERENCE" if self.theme_item_name is None else "THEME_GENERATION"

    def summary(self) -> dict[str, Any]:
        prefix = "batchInferenceJob" if self.kind == "inference" else "batchSegmentJob"
        body = {
            f"{prefix}Arn": self.arn,
            "jobName": self.name,
            "status": self.status,
            "creationDateTime": self.created,
            "lastUpdatedDateTime": self.updated,
            "solutionVersionArn": self.solution_version_arn,
        }
        if self.failure_reason:
            body["failureReason"] = self.failure_reason
        if self.kind == "inference":
            body["batchInferenceJobMode"] = self.mode
        return body


def _s3_config(path: str, key: str | None) -> dict[str, str]:
    return {"path": path, **({"kmsKeyArn": key} if key else {})}


class PersonalizeEmulator:
    """The batch-job part of the Personalize API, backed by ``Recommender`` and S3 at the endpoint."""

    def __init__(
        self,
        recommender: Recommender,
        s3_client: Callable[[], Any],
        region: str,
        account: str,
        timings: Timings = Timings(),
        max_running: int = 5,
        authorizer: Authorizer | None = None,
        changed: threading.Event | None = None,
    ) -> None:
        self.changed = changed or threading.Event()  # set on every status change of a job or a training
        self._iam = authorizer  # the job reads and writes S3 only as its role and the bucket policy allow
        self._s3_client = s3_client
        self._region = region
        self._account = account
        self._timings = timings
        self._max_running = max_running
        # "Service quotas": a batch job reads at most 1 GB of input and 50M records per file (a test may
        # lower them, to see a job past them fail without making a gigabyte)
        self.max_input_bytes, self.max_input_records = JOB_INPUT_BYTES, JOB_INPUT_RECORDS
        self._lock = threading.Lock()
        self._jobs: dict[str, EmulatedJob] = {}
        self._stopping = threading.Event()
        # one solution per recipe, each with a first version trained on the local dataset; retraining
        # and dataset imports are in ``training``
        self.training = Training(
            recommender,
            list(RECIPES),
            s3_client,
            region,
            account,
            lambda: (self._timings.pending, self._timings.running),
            authorizer,
            self._stopping,
            self.changed,
        )
        self.solution_versions = {recipe: self.training.solution_arn(recipe) + "/1" for recipe in RECIPES}
        # the local filters: one, keeping items of the genres its $GENRE placeholder names
        self.genre_filter = f"arn:aws:personalize:{region}:{account}:filter/batchrecs-local-genre"
        self.filters = {self.genre_filter: {"GENRE"}}  # filter ARN -> its placeholders

    def stop(self) -> None:
        self._stopping.set()

    # ------------------------------------------------------------------ WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        action = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix(TARGET_PREFIX)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            handler = getattr(self, f"_{_snake(action)}", None) or getattr(
                self.training, _snake(action), None
            )
            if handler is None:
                raise ApiError("UnknownOperationException", f"{action} is not emulated locally")
            status, payload = "200 OK", handler(body)
        except ApiError as exc:
            status, payload = "400 Bad Request", {"__type": exc.code, "message": exc.message}
        except json.JSONDecodeError:
            status, payload = (
                "400 Bad Request",
                {"__type": "SerializationException", "message": "invalid JSON"},
            )
        data = json.dumps(payload).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data)))]
        if status != "200 OK":
            headers.append(("x-amzn-ErrorType", payload["__type"]))
        start_response(status, headers)
        return [data]

    # ------------------------------------------------------------------ actions

    def _list_batch_inference_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        return page("batchInferenceJobs", self._list("inference", body), body)

    def _list_batch_segment_jobs(self, body: dict[str, Any]) -> dict[str, Any]:
        return page("batchSegmentJobs", self._list("segment", body), body)

    def _create_batch_inference_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"batchInferenceJobArn": self._create("inference", body).arn}

    def _create_batch_segment_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"batchSegmentJobArn": self._create("segment", body).arn}

    def _describe_batch_inference_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"batchInferenceJob": self._job(body.get("batchInferenceJobArn"), "inference").describe()}

    def _describe_batch_segment_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"batchSegmentJob": self._job(body.get("batchSegmentJobArn"), "segment").describe()}

    def _create(self, kind: str, body: dict[str, Any]) -> EmulatedJob:
        name = required(body, "jobName")
        if not JOB_NAME.match(name) or len(name) > 63:
            raise ApiError("InvalidInputException", f"jobName {name!r} does not match {JOB_NAME.pattern}")
        solution = required(body, "solutionVersionArn")
        source = body.get("jobInput", {}).get("s3DataSource", {})
        destination = body.get("jobOutput", {}).get("s3DataDestination", {})
        input_path = required(source, "path", "jobInput.s3DataSource.path")
        output_path = required(destination, "path", "jobOutput.s3DataDestination.path")
        for key in (source.get("kmsKeyArn"), destination.get("kmsKeyArn")):
            if key is not None and not KMS_KEY_ARN.fullmatch(key):  # the API model's kmsKeyArn shape
                raise ApiError("InvalidInputException", f"kmsKeyArn {key!r} is not a KMS key ARN")
        role = required(body, "roleArn")
        if not ROLE_ARN.fullmatch(role) or len(role) > 256:  # the API model's RoleArn shape
            raise ApiError("InvalidInputException", f"roleArn {role!r} is not an IAM role ARN")
        _check_tags(body.get("tags") or [])
        _check_config(body.get("batchInferenceJobConfig") or {})
        version = self.training.version(solution)
        if version is None:
            raise ApiError(
                "ResourceNotFoundException", f"Could not find solution version with ARN {solution}"
            )
        if version.status != ACTIVE:
            raise ApiError(
                "ResourceInUseException", f"Solution version {solution} is {version.status}, not ACTIVE"
            )
        recipe = version.recipe
        theme_item_name = _theme_mode(body, recipe)
        if body.get("filterArn") is not None and body["filterArn"] not in self.filters:
            raise ApiError("ResourceNotFoundException", f"Could not find filter with ARN {body['filterArn']}")
        if RECIPES[recipe][0] != kind:
            job_type = "batch segment jobs" if kind == "segment" else "batch inference jobs"
            raise ApiError("InvalidInputException", f"The recipe {recipe} does not support {job_type}")
        num_results = body.get("numResults")
        bound = 5_000_000 if kind == "segment" else 500  # users per segment (CreateBatchSegmentJob), items
        if num_results is not None and not (isinstance(num_results, int) and 1 <= num_results <= bound):
            raise ApiError("InvalidInputException", f"numResults {num_results} is out of range 1-{bound}")
        for path in (input_path, output_path):
            if not path.startswith("s3://"):
                raise ApiError("InvalidInputException", f"{path} is not an S3 path")
        prefix = "batch-inference-job" if kind == "inference" else "batch-segment-job"
        arn = f"arn:aws:personalize:{self._region}:{self._account}:{prefix}/{name}"
        with self._lock:
            if arn in self._jobs:
                raise ApiError("ResourceAlreadyExistsException", f"A job with the name {name} already exists")
            running = sum(
                1 for job in self._jobs.values() if job.kind == kind and job.status in (PENDING, IN_PROGRESS)
            )
            if running >= self._max_running:
                raise ApiError(
                    "LimitExceededException",
                    f"You have reached the limit of {self._max_running} pending or running {prefix}s",
                )
            job = EmulatedJob(
                kind=kind,
                arn=arn,
                name=name,
                solution_version_arn=solution,
                recipe=recipe,
                input_path=input_path,
                output_path=output_path,
                role_arn=role,
                num_results=num_results,
                filter_arn=body.get("filterArn"),
                config=body.get("batchInferenceJobConfig"),
                theme_item_name=theme_item_name,
                input_key=source.get("kmsKeyArn"),
                output_key=destination.get("kmsKeyArn"),
            )
            self._jobs[arn] = job
        threading.Thread(target=self._run, args=(job,), name=f"personalize-{name}", daemon=True).start()
        return job

    def _job(self, arn: str | None, kind: str) -> EmulatedJob:
        with self._lock:
            job = self._jobs.get(arn or "")
        if job is None or job.kind != kind:
            raise ApiError("ResourceNotFoundException", f"Could not find job with ARN {arn}")
        return job

    def _list(self, kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        solution = body.get("solutionVersionArn")
        with self._lock:
            jobs = [
                j
                for j in self._jobs.values()
                if j.kind == kind and solution in (None, j.solution_version_arn)
            ]
        jobs.sort(key=lambda job: (job.created, job.arn), reverse=True)
        return [job.summary() for job in jobs]

    # ------------------------------------------------------------------ running a job

    def _run(self, job: EmulatedJob) -> None:
        if self._stopping.wait(self._timings.pending):
            return
        self._set(job, IN_PROGRESS)
        started = time.monotonic()
        try:
            lines = self._compute(job)
        except ApiError as exc:
            self._set(job, FAILED, exc.message)
            return
        if self._stopping.wait(max(0.0, self._timings.running - (time.monotonic() - started))):
            return
        bucket, key = _split(job.output_path)
        name = PurePosixPath(_split(job.input_path)[1]).name
        self._s3_client().put_object(Bucket=bucket, Key=f"{key}{name}.out", Body=b"".join(lines))
        self._set(job, ACTIVE)

    def _set(self, job: EmulatedJob, status: str, reason: str | None = None) -> None:
        with self._lock:
            job.status = status
            job.failure_reason = reason
            job.updated = time.time()
        self.changed.set()

    def _check_access(self, job: EmulatedJob) -> None:
        """Personalize reads the input and writes the output as personalize.amazonaws.com, assuming the
        job's role: the role's trust and permissions policies and the bucket policy must all allow it
        ("Giving Amazon Personalize access to Amazon S3 resources"; seed 004's bucket policy step)."""
        if self._iam is None:
            return
        in_bucket, in_key = _split(job.input_path)
        out_bucket, out_key = _split(job.output_path)
        name = PurePosixPath(in_key).name
        needs = [
            Request("s3:GetObject", f"arn:aws:s3:::{in_bucket}/{in_key}"),
            Request("s3:PutObject", f"arn:aws:s3:::{out_bucket}/{out_key}{name}.out"),
        ]
        # an SSE-KMS bucket: the role and the key policy must let Personalize use the key
        needs += [key for need in needs for key in self._iam.key_requests(need, self._region)]
        source = {"aws:SourceAccount": self._account, "aws:SourceArn": job.arn}
        denial = self._iam.check_service("personalize.amazonaws.com", job.role_arn, needs, source)
        if denial is not None:
            raise ApiError(
                "CREATE FAILED",
                "Insufficient privileges for accessing data in S3. Please look at "
                "https://docs.aws.amazon.com/personalize/latest/dg/granting-personalize-s3-access.html "
                f"and fix the bucket policy on {in_bucket}. ({denial.message()})",
            )

    def _compute(self, job: EmulatedJob) -> list[bytes]:
        bucket, key = _split(job.input_path)
        try:
            found = self._s3_client().head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the job's failure reason
            raise ApiError("CREATE FAILED", f"Could not read input {job.input_path}: {exc}") from exc
        if found.get("ServerSideEncryption") == "aws:kms" and not job.input_key:
            raise ApiError(  # "Giving Amazon Personalize permission to use your AWS KMS key"
                "CREATE FAILED",
                f"The input {job.input_path} is encrypted with the AWS KMS key {found.get('SSEKMSKeyId')}: "
                "name it as jobInput.s3DataSource.kmsKeyArn and give Amazon Personalize and the role "
                "permission to use it",
            )
        if found["ContentLength"] > self.max_input_bytes:
            raise ApiError(
                "CREATE FAILED",
                f"Input {job.input_path} is {found['ContentLength']} bytes: a batch job reads at most "
                f"{self.max_input_bytes} bytes of input",
            )
        self._check_access(job)
        try:
            body = self._s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:  # noqa: BLE001 - any failure to read is the job's failure reason
            raise ApiError("CREATE FAILED", f"Could not read input {job.input_path}: {exc}") from exc
        out = []
        needed = RECIPES[job.recipe][1]
        lines = [raw for raw in body.splitlines() if raw.strip()]
        if len(lines) > self.max_input_records:
            raise ApiError(
                "CREATE FAILED",
                f"Input {job.input_path} has {len(lines)} records: at most {self.max_input_records} per file",
            )
        if job.theme_item_name is not None and len(lines) > THEME_MAX_ITEMS:
            raise ApiError(
                "CREATE FAILED",
                f"A theme generation job takes at most {THEME_MAX_ITEMS} items, not {len(lines)}",
            )
        genres = dict(zip(self.training.dataset.item_ids, self.training.dataset.item_genres, strict=True))
        for number, raw in enumerate(body.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                query = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ApiError("CREATE FAILED", f"Invalid JSON in input line {number}") from exc
            if not isinstance(query, dict) or not isinstance(query.get(needed), str):
                raise ApiError(
                    "CREATE FAILED",
                    f"Input line {number} does not match the {job.recipe} recipe: expected field {needed}",
                )
            served = self._serve(job, query)
            if job.theme_item_name is not None and served.get("output"):
                served = _with_theme(served, genres)
            out.append(json.dumps(served, separators=(",", ":")).encode() + b"\n")
        return out

    def _serve(self, job: EmulatedJob, query: dict[str, Any]) -> dict[str, Any]:
        version = self.training.version(job.solution_version_arn)
        if version is None or version.recommender is None:
            raise ApiError("CREATE FAILED", f"solution version {job.solution_version_arn} has no model")
        model = version.recommender  # the version the job named
        count = job.num_results or DEFAULT_RESULTS[job.kind]
        recipe = job.recipe
        if job.filter_arn is not None:  # the line's filterValues fill the filter's placeholders
            unknown = sorted(set(query.get("filterValues") or {}) - self.filters[job.filter_arn])
            if unknown:
                return {
                    "input": query,
                    "output": None,
                    "error": f"filterValues {unknown} are not placeholders of the filter",
                }
        if recipe == "aws-user-personalization":
            wanted = _genres_wanted(query) if job.filter_arn is not None else None
            influence = (job.config or {}).get("rankingInfluence") or {}
            items, scores = model.recommend(
                query["userId"],
                count if wanted is None else len(model.dataset.item_ids),
                popularity=float(influence.get("POPULARITY", 0.0)),
            )
            if wanted is not None:  # INCLUDE ItemID WHERE Items.GENRES IN ($GENRE)
                genres = dict(zip(model.dataset.item_ids, model.dataset.item_genres, strict=True))
                kept = [
                    (i, s)
                    for i, s in zip(items, scores, strict=True)
                    if wanted & set(genres[i].lower().split("|"))
                ]
                items, scores = [i for i, _ in kept[:count]], [s for _, s in kept[:count]]
            return _line(query, {"recommendedItems": items, "scores": scores})
        if recipe == "aws-popularity-count":
            return _line(query, {"recommendedItems": model.popular(count)})
        if recipe == "aws-personalized-ranking":
            items, scores = model.rank(query["userId"], list(query.get("itemList") or []))
            return _line(query, {"recommendedItems": items, "scores": scores})
        if recipe == "aws-item-attribute-affinity":
            users = model.users_for_attributes(query["itemAttributes"], count)
            if users is None:
                return {
                    "itemAttributes": query["itemAttributes"],
                    "output": None,
                    "error": "Unsupported item attribute: the local items dataset has only GENRES",
                }
            return {"itemAttributes": query["itemAttributes"], "output": {"usersList": users}, "error": None}
        if not model.knows_item(query["itemId"]):
            return {
                "input": query,
                "output": None,
                "error": f"Item {query['itemId']} not found in the training data",
            }
        if recipe == "aws-similar-items":
            return _line(query, {"recommendedItems": model.related(query["itemId"], count)})
        return _line(query, {"usersList": model.users_for_item(query["itemId"], count)})


MAX_TAGS = 50  # "Tagging Amazon Personalize resources": 50 tags per resource


def _check_tags(tags: list[Any]) -> None:
    """The API model's Tag shape (key 1-128, value up to 256 characters), "aws:" keys reserved, and at
    most 50 tags per resource (TooManyTagsException)."""
    if len(tags) > MAX_TAGS:
        raise ApiError(
            "TooManyTagsException", f"A resource can have at most {MAX_TAGS} tags, not {len(tags)}"
        )
    for tag in tags:
        key, value = tag.get("tagKey"), tag.get("tagValue")
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise ApiError("InvalidInputException", f"tagKey {key!r} is not a valid tag key")
        if not isinstance(value, str) or len(value) > 256:
            raise ApiError("InvalidInputException", f"tagValue of {key!r} is not a valid tag value")


def _check_config(config: dict[str, Any]) -> None:
    """The API model's BatchInferenceJobConfig: rankingInfluence keys POPULARITY | FRESHNESS, each a
    number from 0 to 1 (locally, POPULARITY reorders a user's items; the local items have no age)."""
    influence = config.get("rankingInfluence") or {}
    for key, value in influence.items():
        if key not in ("POPULARITY", "FRESHNESS"):
            raise ApiError(
                "InvalidInputException", f"rankingInfluence key {key!r} is not POPULARITY or FRESHNESS"
            )
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ApiError(
                "InvalidInputException", f"rankingInfluence {key} {value!r} is not between 0 and 1"
            )


def _genres_wanted(query: dict[str, Any]) -> set[str] | None:
    """The genres a line's ``GENRE`` filter value names (``"\"horror\",\"comedy\""``, as the service
    takes them); None when the line gives none (the filter then keeps everything)."""
    value = (query.get("filterValues") or {}).get("GENRE")
    if not isinstance(value, str):
        return None
    return {part.strip().strip('"').lower() for part in value.split(",") if part.strip()}


# Personalize's quotas for batch jobs (developer guide, "Service quotas"; seeds/README): input of at
# most 1 GB (1,000 files), at most 50 million records per file
JOB_INPUT_BYTES = 1 << 30
JOB_INPUT_RECORDS = 50_000_000
THEME_MAX_ITEMS = 100  # "Batch recommendations with themes from Content Generator": at most 100 items


def _theme_mode(body: dict[str, Any], recipe: str) -> str | None:
    """The Items field a THEME_GENERATION job names its themes from (None: a plain job). Themes come
    from Content Generator on a Similar-Items solution only, and need the item name field."""
    mode = body.get("batchInferenceJobMode", "BATCH_INFERENCE")
    if mode not in ("BATCH_INFERENCE", "THEME_GENERATION"):
        raise ApiError("InvalidInputException", f"batchInferenceJobMode {mode!r} is not valid")
    if mode == "BATCH_INFERENCE":
        return None
    if recipe != "aws-similar-items":
        raise ApiError(
            "InvalidInputException",
            f"THEME_GENERATION needs a solution version of the Similar-Items recipe, not {recipe}",
        )
    name = ((body.get("themeGenerationConfig") or {}).get("fieldsForThemeGeneration") or {}).get("itemName")
    if not isinstance(name, str) or not name:
        raise ApiError(
            "InvalidInputException", "themeGenerationConfig.fieldsForThemeGeneration.itemName is required"
        )
    return name


def _with_theme(line: dict[str, Any], genres: dict[str, str]) -> dict[str, Any]:
    """A related-items line with a theme: named after the genre most of its items share, and each item's
    relevance to it (about -0.2 to 0.6, as the service's scores run; deterministic)."""
    items = line["output"]["recommendedItems"]
    counts: dict[str, int] = {}
    for item in items:
        for genre in genres.get(item, "").split("|"):
            counts[genre] = counts.get(genre, 0) + 1
    genre = max(sorted(counts), key=lambda g: counts[g]) if counts else "Unknown"
    relevance = [
        round((0.45 if genre in genres.get(item, "").split("|") else -0.1) + (int(item) % 7) * 0.02, 4)
        if item.isdigit()
        else 0.0
        for item in items
    ]
    line["output"] = {
        **line["output"],
        "theme": f"{genre} titles you may like",
        "itemsThemeRelevanceScores": relevance,
    }
    return line


def _line(query: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    return {"input": query, "output": output, "error": None}


def _split(path: str) -> tuple[str, str]:
    bucket, _, key = path.removeprefix("s3://").partition("/")
    return bucket, key


def _snake(action: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
