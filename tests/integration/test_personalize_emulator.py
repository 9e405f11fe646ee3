"""The local Personalize emulator, through unchanged boto3 clients on the local endpoint.

Output lines are compared with the documented formats (seed 002 examples): same structure, compact
JSON in Personalize's key order, ``<input name>.out`` under the output path.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from batchrecs_local.endpoint import ACCOUNT, LocalEndpoint
from batchrecs_local.iam import Role
from batchrecs_local.personalize.emulator import Timings
from batchrecs_local.personalize.recommender import GENRES

from tests.conftest import FIXTURES

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]
BUCKET = "emulator-data"
UNSHARED_BUCKET = "emulator-data-without-bucket-policy"
ROLE = "arn:aws:iam::123456789012:role/personalize"
OTHER_ACCOUNTS_ROLE = "arn:aws:iam::123456789012:role/trusts-another-account"


def _personalize_may_use(bucket: str) -> dict[str, Any]:
    """A bucket policy like the template's: Personalize reads in/ and writes out/ for this account's jobs."""
    source = {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:personalize:us-east-1:{ACCOUNT}:batch-*"},
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "personalize.amazonaws.com"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/in/*",
                "Condition": source,
            },
            {
                "Effect": "Allow",
                "Principal": {"Service": "personalize.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/out/*",
                "Condition": source,
            },
        ],
    }


def _role(arn: str, source_account: str = ACCOUNT) -> Role:
    """A Personalize service role that may read in/ and write out/ of any bucket."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "personalize.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": source_account}},
            }
        ],
    }
    access = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/in/*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::*/out/*"},
        ],
    }
    return Role(arn.rsplit("/", 1)[-1], arn, [access], trust)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[LocalEndpoint]:
    local = LocalEndpoint(timings=Timings(pending=0.3, running=0.3)).start()
    for bucket in (BUCKET, UNSHARED_BUCKET):
        local.client("s3").create_bucket(Bucket=bucket)
    local.iam.set_resource_policy(f"arn:aws:s3:::{BUCKET}", _personalize_may_use(BUCKET))
    local.iam.add_role(_role(ROLE))
    local.iam.add_role(_role(OTHER_ACCOUNTS_ROLE, source_account="999999999999"))
    yield local
    local.stop()


def _run(
    endpoint: LocalEndpoint,
    recipe: str,
    name: str,
    body: bytes,
    segment: bool = False,
    bucket: str = BUCKET,
    role: str = ROLE,
    **extra: Any,
) -> dict:
    s3, personalize = endpoint.client("s3"), endpoint.client("personalize")
    s3.put_object(Bucket=bucket, Key=f"in/{name}/input.json", Body=body)
    request = {
        "jobName": name,
        "solutionVersionArn": endpoint.emulator.solution_versions[recipe],
        "jobInput": {"s3DataSource": {"path": f"s3://{bucket}/in/{name}/input.json"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{bucket}/out/{name}/"}},
        "roleArn": role,
        **extra,
    }
    create = personalize.create_batch_segment_job if segment else personalize.create_batch_inference_job
    arn = create(**request)["batchSegmentJobArn" if segment else "batchInferenceJobArn"]

    def describe() -> dict[str, Any]:
        if segment:
            return personalize.describe_batch_segment_job(batchSegmentJobArn=arn)["batchSegmentJob"]
        return personalize.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]

    statuses = [describe()["status"]]
    deadline = time.monotonic() + 20
    while statuses[-1] not in ("ACTIVE", "CREATE FAILED") and time.monotonic() < deadline:
        time.sleep(0.05)
        if (status := describe()["status"]) != statuses[-1]:
            statuses.append(status)
    job = describe()
    job["statuses"] = statuses
    return job


def _out_lines(endpoint: LocalEndpoint, name: str) -> list[bytes]:
    keys = [
        o["Key"]
        for o in endpoint.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=f"out/{name}/")["Contents"]
    ]
    assert keys == [f"out/{name}/input.json.out"]
    return endpoint.client("s3").get_object(Bucket=BUCKET, Key=keys[0])["Body"].read().splitlines()


def _compact(line: bytes) -> dict[str, Any]:
    value = json.loads(line)
    assert line == json.dumps(value, separators=(",", ":")).encode(), "not byte-for-byte compact JSON"
    return value


def test_user_personalization_job_moves_through_states_and_writes_the_documented_format(endpoint) -> None:
    # Given the seed's user-personalization input (users unknown to the local model: cold users)
    body = (FIXTURES / "seed002_user_personalization.in.jsonl").read_bytes()
    # When a job runs
    job = _run(endpoint, "aws-user-personalization", "up-seed", body, numResults=25)
    # Then it went PENDING -> IN_PROGRESS -> ACTIVE and wrote one line per input line, as documented
    assert job["statuses"] == ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]
    seed = [
        json.loads(line)
        for line in (FIXTURES / "seed002_user_personalization.out.jsonl").read_bytes().splitlines()
    ]
    lines = [_compact(line) for line in _out_lines(endpoint, "up-seed")]
    assert [line["input"] for line in lines] == [line["input"] for line in seed]
    for line, documented in zip(lines, seed, strict=True):
        assert list(line) == list(documented) == ["input", "output", "error"]
        assert list(line["output"]) == list(documented["output"]) == ["recommendedItems", "scores"]
        assert len(line["output"]["recommendedItems"]) == len(line["output"]["scores"]) == 25
        assert line["output"]["scores"] == sorted(line["output"]["scores"], reverse=True)
        assert line["error"] is None


@pytest.mark.parametrize(
    ("recipe", "seed", "segment", "output_keys"),
    [
        ("aws-popularity-count", "popularity", False, ["recommendedItems"]),
        ("aws-personalized-ranking", "personalized_ranking", False, ["recommendedItems", "scores"]),
        ("aws-similar-items", "related_items", False, ["recommendedItems"]),
        ("aws-item-affinity", "item_affinity", True, ["usersList"]),
    ],
)
def test_every_recipe_answers_the_seed_input_in_its_documented_shape(
    endpoint, recipe, seed, segment, output_keys
) -> None:
    body = (FIXTURES / f"seed002_{seed}.in.jsonl").read_bytes()
    job = _run(endpoint, recipe, f"seed-{seed.replace('_', '-')}", body, segment=segment)
    assert job["status"] == "ACTIVE"
    lines = [_compact(line) for line in _out_lines(endpoint, f"seed-{seed.replace('_', '-')}")]
    inputs = [json.loads(line) for line in body.splitlines()]
    assert [line["input"] for line in lines] == inputs
    for line in lines:
        if line["error"] is None:
            assert list(line["output"]) == output_keys
        else:  # an id the model has never seen: Personalize answers the line with an error
            assert line["output"] is None and "not found" in line["error"]
    served = [line for line in lines if line["error"] is None]
    assert served, "every line failed"
    if recipe == "aws-personalized-ranking":
        for line in served:
            assert sorted(line["output"]["recommendedItems"]) == sorted(line["input"]["itemList"])
            assert abs(sum(line["output"]["scores"]) - 1) < 1e-3


def test_item_attribute_affinity_follows_the_documented_top_level_expression(endpoint) -> None:
    body = (
        b'{"itemAttributes": "ITEMS.GENRES = \\"Comedy\\""}\n{"itemAttributes": "ITEMS.colour = \\"red\\""}\n'
    )
    job = _run(endpoint, "aws-item-attribute-affinity", "attrs", body, segment=True, numResults=7)
    assert job["status"] == "ACTIVE"
    comedy, colour = (_compact(line) for line in _out_lines(endpoint, "attrs"))
    assert list(comedy) == ["itemAttributes", "output", "error"]
    assert len(comedy["output"]["usersList"]) == 7
    assert colour["error"] is not None


def test_input_that_does_not_match_the_recipe_fails_the_job(endpoint) -> None:
    # Given item ids sent to a user-personalization solution (a route pointed at the wrong solution)
    job = _run(endpoint, "aws-user-personalization", "mismatch", b'{"itemId": "105"}\n')
    # Then the job fails with a reason, as Personalize does
    assert job["status"] == "CREATE FAILED"
    assert "expected field userId" in job["failureReason"]


def test_api_errors_have_the_real_codes(endpoint) -> None:
    personalize = endpoint.client("personalize")
    base = {
        "jobName": "errors-1",
        "solutionVersionArn": endpoint.emulator.solution_versions["aws-user-personalization"],
        "jobInput": {"s3DataSource": {"path": f"s3://{BUCKET}/missing.json"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{BUCKET}/out/errors/"}},
        "roleArn": ROLE,
    }
    with pytest.raises(personalize.exceptions.ResourceNotFoundException):
        personalize.create_batch_inference_job(
            **{**base, "solutionVersionArn": base["solutionVersionArn"][:-1] + "9"}
        )
    with pytest.raises(personalize.exceptions.InvalidInputException):
        personalize.create_batch_segment_job(**base)  # a user-personalization solution has no segments
    # roleArn must match the API model's RoleArn pattern (arn:<partition>:iam::<account>:role/<name>)
    for not_a_role in ("arn:aws:iam::123456789012:user/alice", "personalize-role", "arn:aws:iam::12:role/r"):
        with pytest.raises(personalize.exceptions.InvalidInputException, match="is not an IAM role ARN"):
            personalize.create_batch_inference_job(**{**base, "roleArn": not_a_role})
    with pytest.raises(personalize.exceptions.InvalidInputException, match="out of range 1-500"):
        personalize.create_batch_inference_job(**{**base, "numResults": 501})  # items per line
    # tags: at most 50 per resource ("Tagging Amazon Personalize resources"), "aws:" keys reserved
    many = [{"tagKey": f"k{i}", "tagValue": "v"} for i in range(51)]
    with pytest.raises(personalize.exceptions.TooManyTagsException):
        personalize.create_batch_inference_job(**{**base, "tags": many})
    with pytest.raises(personalize.exceptions.InvalidInputException, match="not a valid tag key"):
        personalize.create_batch_inference_job(**{**base, "tags": [{"tagKey": "aws:x", "tagValue": "v"}]})
    with pytest.raises(personalize.exceptions.ResourceNotFoundException):
        personalize.describe_batch_inference_job(
            batchInferenceJobArn="arn:aws:personalize:us-east-1:123456789012:batch-inference-job/nope"
        )
    personalize.create_batch_inference_job(**base)
    with pytest.raises(personalize.exceptions.ResourceAlreadyExistsException):
        personalize.create_batch_inference_job(**base)


def test_more_than_five_pending_or_running_jobs_is_a_limit_error() -> None:
    local = LocalEndpoint(timings=Timings(pending=30, running=30)).start()
    try:
        personalize = local.client("personalize")
        sv = local.emulator.solution_versions["aws-user-personalization"]
        request = {
            "solutionVersionArn": sv,
            "jobInput": {"s3DataSource": {"path": "s3://b/in.json"}},
            "jobOutput": {"s3DataDestination": {"path": "s3://b/out/"}},
            "roleArn": ROLE,
        }
        for i in range(5):
            personalize.create_batch_inference_job(jobName=f"limit-{i}", **request)
        with pytest.raises(personalize.exceptions.LimitExceededException):
            personalize.create_batch_inference_job(jobName="limit-5", **request)
        listed = personalize.list_batch_inference_jobs(solutionVersionArn=sv)["batchInferenceJobs"]
        assert {job["status"] for job in listed} == {"CREATE PENDING"} and len(listed) == 5
    finally:
        local.stop()


# "Giving Amazon Personalize access to Amazon S3 resources" (Personalize developer guide): the service role
# and a bucket policy for personalize.amazonaws.com are both needed; without them jobs end CREATE FAILED.
@pytest.mark.parametrize(
    ("bucket", "role", "missing"),
    [
        (UNSHARED_BUCKET, ROLE, "no resource-based policy allows the service principal"),
        (BUCKET, OTHER_ACCOUNTS_ROLE, "the role's trust policy does not allow it"),
        (BUCKET, "arn:aws:iam::123456789012:role/no-such-role", "the role does not exist"),
    ],
)
def test_a_job_whose_bucket_or_role_does_not_let_personalize_in_fails_as_on_aws(
    endpoint: LocalEndpoint, bucket: str, role: str, missing: str
) -> None:
    # Given a bucket without Personalize's bucket policy, or a role Personalize may not assume
    body = (FIXTURES / "seed002_user_personalization.in.jsonl").read_bytes()
    # When a job is run on it
    job = _run(
        endpoint,
        "aws-user-personalization",
        f"denied-{abs(hash((bucket, role)))}",
        body,
        bucket=bucket,
        role=role,
    )
    # Then it fails with the service's message and the reason, and writes nothing
    assert job["status"] == "CREATE FAILED"
    assert job["failureReason"].startswith("Insufficient privileges for accessing data in S3")
    assert missing in job["failureReason"]


def test_solution_versions_are_listed_newest_first_a_page_at_a_time_and_the_adapter_pages_through(
    endpoint,
) -> None:
    from batchrecs.aws.personalize import PersonalizeBatchJobs
    from batchrecs.errors import PersonalizeRejected

    client = endpoint.client("personalize")
    version = endpoint.emulator.solution_versions["aws-user-personalization"]
    solution = version.rsplit("/", 1)[0]
    # ListSolutionVersions (API: solutionArn optional, maxResults 1-100, nextToken)
    everything = client.list_solution_versions(maxResults=2)
    assert len(everything["solutionVersions"]) == 2 and everything["nextToken"]
    listed = client.list_solution_versions(solutionArn=solution)["solutionVersions"]
    assert [(v["solutionVersionArn"], v["status"]) for v in listed] == [(version, "ACTIVE")]
    assert (
        client.describe_solution_version(solutionVersionArn=version)["solutionVersion"]["solutionArn"]
        == solution
    )
    described = client.describe_solution(solutionArn=solution)["solution"]
    assert (described["status"], described["latestSolutionVersion"]["solutionVersionArn"]) == (
        "ACTIVE",
        version,
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.list_solution_versions(solutionArn=f"{solution}-missing")
    with pytest.raises(client.exceptions.InvalidInputException):
        client.list_solution_versions(maxResults=101)
    # The adapter finds the newest ACTIVE version through every page, and says "no" for a missing solution
    adapter = PersonalizeBatchJobs(client)
    found = adapter.solution_versions(solution)
    assert (found.newest_active, found.statuses) == (version, {"ACTIVE": 1})
    with pytest.raises(PersonalizeRejected, match="ResourceNotFoundException"):
        adapter.solution_versions(f"{solution}-missing")


def _wait(describe: Any, deadline: float = 20) -> dict[str, Any]:
    ends = time.monotonic() + deadline
    while (found := describe())["status"] not in ("ACTIVE", "CREATE FAILED") and time.monotonic() < ends:
        time.sleep(0.05)
    return found


def _genre_share(local: LocalEndpoint, job: str, genre: str) -> float:
    dataset = local.emulator.training.dataset
    genres = dict(zip(dataset.item_ids, dataset.item_genres, strict=True))
    [line] = _out_lines(local, job)
    items = json.loads(line)["output"]["recommendedItems"]
    return sum(genre in genres[item].split("|") for item in items) / len(items)


def test_a_dataset_import_and_a_new_solution_version_really_retrain_the_local_model() -> None:
    from batchrecs.aws.personalize import PersonalizeBatchJobs

    local = LocalEndpoint(timings=Timings(pending=0.05, running=0.05)).start()
    try:
        local.client("s3").create_bucket(Bucket=BUCKET)
        policy = _personalize_may_use(BUCKET)  # and its dataset import jobs may read in/ too
        for statement in policy["Statement"]:
            statement["Condition"]["ArnLike"]["aws:SourceArn"] = [
                f"arn:aws:personalize:us-east-1:{ACCOUNT}:batch-*",
                f"arn:aws:personalize:us-east-1:{ACCOUNT}:dataset-import-job/*",
            ]
        local.iam.set_resource_policy(f"arn:aws:s3:::{BUCKET}", policy)
        local.iam.add_role(_role(ROLE))
        personalize, s3 = local.client("personalize"), local.client("s3")
        training = local.emulator.training
        first = local.emulator.solution_versions["aws-user-personalization"]
        solution = first.rsplit("/", 1)[0]
        # Given user 1's top 10 from version 1, and a genre it rarely gets
        before = _run(
            local, "aws-user-personalization", "before", b'{"userId": "1", "numResults": 10}\n', numResults=10
        )
        assert before["status"] == "ACTIVE"
        dataset = training.dataset
        genres = dict(zip(dataset.item_ids, dataset.item_genres, strict=True))
        seen = {item for user, item, _ in dataset.interactions if user == "1"}
        liked = Counter(genre for item in seen for genre in genres[item].split("|"))
        genre = min(GENRES, key=lambda g: (liked[g], g))  # the genre user 1 cares least for
        chosen = [item for item, g in genres.items() if genre in g.split("|")]
        share_before = _genre_share(local, "before", genre)
        # When user 1 is imported as loving half of that genre's items (INCREMENTAL) and the solution retrains
        loved = [item for item in chosen if item not in seen][: len(chosen) // 2]
        csv = "USER_ID,ITEM_ID,TIMESTAMP\n" + "".join(
            f"1,{item},{1_800_000_000 + n}\n" for n, item in enumerate(loved)
        )
        s3.put_object(Bucket=BUCKET, Key="in/interactions.csv", Body=csv.encode())
        imported = personalize.create_dataset_import_job(
            jobName="more-horror",
            datasetArn=training.interactions_dataset,
            dataSource={"dataLocation": f"s3://{BUCKET}/in/interactions.csv"},
            roleArn=ROLE,
            importMode="INCREMENTAL",
        )["datasetImportJobArn"]
        job = _wait(
            lambda: personalize.describe_dataset_import_job(datasetImportJobArn=imported)["datasetImportJob"]
        )
        assert job["status"] == "ACTIVE", job.get("failureReason")
        assert len(training.dataset.interactions) == len(dataset.interactions) + len(loved)
        second = personalize.create_solution_version(solutionArn=solution, trainingMode="FULL")[
            "solutionVersionArn"
        ]
        with pytest.raises(personalize.exceptions.ResourceInUseException):  # one training at a time
            personalize.create_solution_version(solutionArn=solution)
        with pytest.raises(personalize.exceptions.ResourceInUseException, match="not ACTIVE"):
            personalize.create_batch_inference_job(  # a version still training: "not now" (seed 004 waits)
                jobName="on-a-training-version",
                solutionVersionArn=second,
                jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/in/x.json"}},
                jobOutput={"s3DataDestination": {"path": f"s3://{BUCKET}/out/x/"}},
                roleArn=ROLE,
            )
        trained = _wait(
            lambda: personalize.describe_solution_version(solutionVersionArn=second)["solutionVersion"]
        )
        assert (second, trained["status"]) == (f"{solution}/2", "ACTIVE")
        # Then the solution's newest ACTIVE version is the new one, and its top 10 moved to that genre
        assert PersonalizeBatchJobs(personalize).solution_versions(solution).newest_active == second
        after = _run(local, "aws-user-personalization", "after", b'{"userId": "1"}\n', numResults=10)
        assert after["status"] == "ACTIVE"
        # _run names version 1; run the same input on version 2
        s3.put_object(Bucket=BUCKET, Key="in/after2/input.json", Body=b'{"userId": "1"}\n')
        arn = personalize.create_batch_inference_job(
            jobName="after2",
            solutionVersionArn=second,
            numResults=10,
            jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/in/after2/input.json"}},
            jobOutput={"s3DataDestination": {"path": f"s3://{BUCKET}/out/after2/"}},
            roleArn=ROLE,
        )["batchInferenceJobArn"]
        assert (
            _wait(
                lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=arn)[
                    "batchInferenceJob"
                ]
            )["status"]
            == "ACTIVE"
        )
        share_old_model, share_new_model = (
            _genre_share(local, "after", genre),
            _genre_share(local, "after2", genre),
        )
        print(f"user 1's top 10 in {genre}: version 1 {share_before:.0%} -> version 2 {share_new_model:.0%}")
        assert share_old_model == share_before <= 0.2  # version 1 is unchanged by the import
        assert share_new_model >= 0.8
        # And a file without a TIMESTAMP column fails its import with the reason
        s3.put_object(Bucket=BUCKET, Key="in/bad.csv", Body=b"USER_ID,ITEM_ID\n1,100\n")
        bad = personalize.create_dataset_import_job(
            jobName="bad",
            datasetArn=training.interactions_dataset,
            dataSource={"dataLocation": f"s3://{BUCKET}/in/bad.csv"},
            roleArn=ROLE,
        )["datasetImportJobArn"]
        failed = _wait(
            lambda: personalize.describe_dataset_import_job(datasetImportJobArn=bad)["datasetImportJob"]
        )
        assert (failed["status"], failed["failureReason"]) == (
            "CREATE FAILED",
            "The header has no TIMESTAMP column (found: USER_ID, ITEM_ID)",
        )
    finally:
        local.stop()


def test_a_refresh_against_the_emulator_fails_at_the_step_that_fails_with_personalizes_reason() -> None:
    """jobs.refresh with the real adapter on the emulator: a bad interactions file fails the import step;
    a FULL import of too little data fails the training step (Personalize's minimum data rule)."""
    from batchrecs.aws.personalize import PersonalizeBatchJobs
    from batchrecs.jobs import refresh
    from batchrecs.jobs.model import CREATE_FAILED, DATA_IMPORTING, Job
    from batchrecs.routes.config import Refresh

    local = LocalEndpoint(timings=Timings(pending=0.05, running=0.05)).start()
    try:
        local.client("s3").create_bucket(Bucket=BUCKET)
        # as the template: Personalize's dataset import jobs may read datasets/, as the role and by the bucket
        reads = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/datasets/*"}
        service = {"Service": "personalize.amazonaws.com"}
        allowed = {
            **reads,
            "Principal": service,
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
        local.iam.set_resource_policy(
            f"arn:aws:s3:::{BUCKET}", {"Version": "2012-10-17", "Statement": [allowed]}
        )
        role = _role(ROLE)
        policies = [{"Version": "2012-10-17", "Statement": [reads]}]
        local.iam.add_role(Role(role.name, role.arn, policies, role.trust))
        personalize = PersonalizeBatchJobs(local.client("personalize"))
        solution = local.emulator.solution_versions["aws-user-personalization"].rsplit("/", 1)[0]
        dataset = local.emulator.training.interactions_dataset

        def run(name: str, csv: bytes, mode: str) -> Job:
            local.client("s3").put_object(Bucket=BUCKET, Key=f"datasets/{name}.csv", Body=csv)
            steps = Refresh.model_validate(
                {
                    "datasetImport": {
                        "datasetArn": dataset,
                        "dataKey": f"datasets/{name}.csv",
                        "importMode": mode,
                    },
                    "train": {},
                }
            )
            job = Job(
                jobName=name,
                route="r",
                kind="user-personalization",
                status=DATA_IMPORTING,
                sourceBucket=BUCKET,
                sourceKey="input/r/u.jsonl",
                sourceIdentity="x",
                createdAt="2026-12-01T10:00:00Z",
                updatedAt="2026-12-01T10:00:00Z",
                request=json.dumps({"jobName": name, "solutionArn": solution, "roleArn": ROLE}),
            )
            deadline = time.monotonic() + 20
            while job.status not in (CREATE_FAILED, "CREATE PENDING") and time.monotonic() < deadline:
                job = refresh.advance(job, steps, personalize, "2026-12-01T10:00:01Z")
                time.sleep(0.05)
            return job

        bad = run("bad-file", b"USER_ID,ITEM_ID\n1,100\n", "INCREMENTAL")
        assert (bad.status, bad.failureReason) == (
            "CREATE FAILED",
            f"refresh dataset import failed: {bad.refreshImportArn}: The header has no TIMESTAMP column "
            "(found: USER_ID, ITEM_ID)",
        )
        small = run("too-little", b"USER_ID,ITEM_ID,TIMESTAMP\n1,100,1\n2,101,2\n", "FULL")
        assert small.status == "CREATE FAILED" and small.refreshVersionArn is not None
        assert small.failureReason == (
            f"refresh training failed: {small.refreshVersionArn}: Insufficient data: 2 interactions from 2 users; "
            "at least 1000 interactions and 25 users with 2 or more are needed"
        )
    finally:
        local.stop()


def test_theme_generation_is_for_similar_items_solutions_with_an_item_name_and_at_most_100_items(
    endpoint,
) -> None:
    # "Batch recommendations with themes from Content Generator": Similar-Items only, itemName required,
    # at most 100 input items; theme lines add output.theme and output.itemsThemeRelevanceScores
    theme = {"batchInferenceJobMode": "THEME_GENERATION"}
    config = {"themeGenerationConfig": {"fieldsForThemeGeneration": {"itemName": "TITLE"}}}
    personalize = endpoint.client("personalize")
    with pytest.raises(personalize.exceptions.InvalidInputException, match="Similar-Items"):
        _run(endpoint, "aws-user-personalization", "theme-up", b'{"userId": "1"}\n', **theme, **config)
    with pytest.raises(personalize.exceptions.InvalidInputException, match="itemName is required"):
        _run(endpoint, "aws-similar-items", "theme-no-name", b'{"itemId": "105"}\n', **theme)
    job = _run(
        endpoint,
        "aws-similar-items",
        "themes-ok",
        b'{"itemId": "105"}\n{"itemId": "106"}\n',
        **theme,
        **config,
    )
    assert job["status"] == "ACTIVE" and job["batchInferenceJobMode"] == "THEME_GENERATION"
    assert job["themeGenerationConfig"] == config["themeGenerationConfig"]
    for line in _out_lines(endpoint, "themes-ok"):
        output = json.loads(line)["output"]
        assert isinstance(output["theme"], str) and output["theme"]
        relevance = output["itemsThemeRelevanceScores"]
        assert len(relevance) == len(output["recommendedItems"]) and all(-0.2 <= r <= 0.6 for r in relevance)
    too_many = b"".join(b'{"itemId": "%d"}\n' % item for item in range(100, 201))  # 101 items
    failed = _run(endpoint, "aws-similar-items", "themes-101", too_many, **theme, **config)
    assert (failed["status"], failed["failureReason"]) == (
        "CREATE FAILED",
        "A theme generation job takes at most 100 items, not 101",
    )


KMS_BUCKET = "emulator-data-kms"


def test_a_job_reading_sse_kms_input_needs_the_key_named_and_permission_to_use_it(endpoint) -> None:
    # "Giving Amazon Personalize permission to use your AWS KMS key": with an SSE-KMS bucket the job names
    # the key (S3DataConfig.kmsKeyArn) and both the key policy and the role must let Personalize use it
    s3, kms = endpoint.client("s3"), endpoint.client("kms")
    key = kms.create_key(Description="emulator test key")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=KMS_BUCKET)
    s3.put_bucket_encryption(
        Bucket=KMS_BUCKET,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}
            ]
        },
    )
    endpoint.iam.set_resource_policy(f"arn:aws:s3:::{KMS_BUCKET}", _personalize_may_use(KMS_BUCKET))
    endpoint.iam.set_bucket_key(KMS_BUCKET, key)
    body = (FIXTURES / "seed002_user_personalization.in.jsonl").read_bytes()
    keyed = {
        "jobInput": {
            "s3DataSource": {"path": f"s3://{KMS_BUCKET}/in/kms-named/input.json", "kmsKeyArn": key}
        },
        "jobOutput": {"s3DataDestination": {"path": f"s3://{KMS_BUCKET}/out/kms-named/", "kmsKeyArn": key}},
    }
    # Given no kmsKeyArn: the job fails saying which key to name
    unnamed = _run(endpoint, "aws-user-personalization", "kms-unnamed", body, bucket=KMS_BUCKET)
    assert unnamed["status"] == "CREATE FAILED"
    assert f"is encrypted with the AWS KMS key {key}" in unnamed["failureReason"]
    assert "jobInput.s3DataSource.kmsKeyArn" in unnamed["failureReason"]
    # Given the key named but a key policy that does not let Personalize use it: CREATE FAILED, saying why
    denied = _run(endpoint, "aws-user-personalization", "kms-named", body, bucket=KMS_BUCKET, **keyed)
    assert denied["status"] == "CREATE FAILED"
    assert "kms:Decrypt" in denied["failureReason"]
    # Given the key policy the README asks for and a role that may use the key: the job runs
    endpoint.iam.set_resource_policy(
        key,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "personalize.amazonaws.com"},
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": "*",
                }
            ],
        },
    )
    role = _role("arn:aws:iam::123456789012:role/personalize-with-key")
    role.policies.append(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key}
            ],
        }
    )
    endpoint.iam.add_role(role)
    request = {
        "jobInput": {"s3DataSource": {"path": f"s3://{KMS_BUCKET}/in/kms-ok/input.json", "kmsKeyArn": key}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{KMS_BUCKET}/out/kms-ok/", "kmsKeyArn": key}},
    }
    job = _run(
        endpoint, "aws-user-personalization", "kms-ok", body, bucket=KMS_BUCKET, role=role.arn, **request
    )
    assert job["status"] == "ACTIVE", job.get("failureReason")
    # And Describe returns the keys as the API model's BatchInferenceJob has them
    assert job["jobInput"] == request["jobInput"] and job["jobOutput"] == request["jobOutput"]
    assert job["batchInferenceJobMode"] == "BATCH_INFERENCE"
    personalize = endpoint.client("personalize")
    with pytest.raises(personalize.exceptions.InvalidInputException, match="is not a KMS key ARN"):
        _run(
            endpoint,
            "aws-user-personalization",
            "kms-bad-arn",
            body,
            jobInput={"s3DataSource": {"path": f"s3://{BUCKET}/in/x", "kmsKeyArn": "alias/mine"}},
        )


def test_batch_jobs_are_listed_newest_first_a_page_at_a_time_with_the_summary_fields() -> None:
    # ListBatchInferenceJobs / ListBatchSegmentJobs (API model): maxResults 1-100, nextToken while more are
    # left, an unknown token is InvalidNextTokenException; summaries carry batchInferenceJobMode
    local = LocalEndpoint(timings=Timings(pending=30, running=30)).start()
    try:
        personalize = local.client("personalize")
        request = {
            "solutionVersionArn": local.emulator.solution_versions["aws-user-personalization"],
            "jobInput": {"s3DataSource": {"path": "s3://b/in.json"}},
            "jobOutput": {"s3DataDestination": {"path": "s3://b/out/"}},
            "roleArn": ROLE,
        }
        for i in range(5):
            personalize.create_batch_inference_job(jobName=f"page-{i}", **request)
            time.sleep(0.01)  # distinct creation times: newest first is an order
        first = personalize.list_batch_inference_jobs(maxResults=2)
        assert [j["jobName"] for j in first["batchInferenceJobs"]] == ["page-4", "page-3"]
        assert first["batchInferenceJobs"][0]["batchInferenceJobMode"] == "BATCH_INFERENCE"
        second = personalize.list_batch_inference_jobs(maxResults=2, nextToken=first["nextToken"])
        last = personalize.list_batch_inference_jobs(maxResults=2, nextToken=second["nextToken"])
        assert [j["jobName"] for j in second["batchInferenceJobs"] + last["batchInferenceJobs"]] == [
            "page-2",
            "page-1",
            "page-0",
        ]
        assert "nextToken" not in last
        pages = personalize.get_paginator("list_batch_inference_jobs").paginate(
            PaginationConfig={"PageSize": 3}
        )
        assert sum(len(p["batchInferenceJobs"]) for p in pages) == 5
        assert personalize.list_batch_segment_jobs()["batchSegmentJobs"] == []
        with pytest.raises(personalize.exceptions.InvalidNextTokenException):
            personalize.list_batch_inference_jobs(nextToken="not-a-token")
        with pytest.raises(personalize.exceptions.InvalidInputException):
            personalize.list_batch_inference_jobs(maxResults=101)
    finally:
        local.stop()


@pytest.mark.parametrize(
    ("influence", "message"),
    [({"RECENCY": 0.5}, "is not POPULARITY or FRESHNESS"), ({"POPULARITY": 1.5}, "is not between 0 and 1")],
)
def test_ranking_influence_takes_the_api_models_keys_and_range(endpoint, influence, message) -> None:
    # API reference, BatchInferenceJobConfig.rankingInfluence: keys POPULARITY | FRESHNESS, values 0-1
    personalize = endpoint.client("personalize")
    with pytest.raises(personalize.exceptions.InvalidInputException, match=message):
        _run(
            endpoint,
            "aws-user-personalization",
            "influence-bad",
            b'{"userId": "1"}\n',
            batchInferenceJobConfig={"rankingInfluence": influence},
        )


def test_input_past_a_batch_jobs_quota_fails_the_job(endpoint) -> None:
    # Personalize's quotas (developer guide, "Service quotas"): a batch job reads at most 1 GB of input
    # and 50 million records per file; the emulator's limits are lowered here instead of making a GB
    emulator = endpoint.emulator
    assert (emulator.max_input_bytes, emulator.max_input_records) == (1 << 30, 50_000_000)
    body = b"".join(b'{"userId": "%d"}\n' % user for user in range(1, 6))  # 5 records, 80 bytes
    try:
        emulator.max_input_bytes = 79
        too_big = _run(endpoint, "aws-user-personalization", "quota-bytes", body)
        emulator.max_input_bytes, emulator.max_input_records = 1 << 30, 4
        too_many = _run(endpoint, "aws-user-personalization", "quota-records", body)
        emulator.max_input_records = 5
        within = _run(endpoint, "aws-user-personalization", "quota-within", body)
    finally:
        emulator.max_input_bytes, emulator.max_input_records = 1 << 30, 50_000_000
    assert too_big["status"] == too_many["status"] == "CREATE FAILED"
    assert "80 bytes: a batch job reads at most 79 bytes" in too_big["failureReason"]
    assert "5 records: at most 4 per file" in too_many["failureReason"]
    assert within["status"] == "ACTIVE"
