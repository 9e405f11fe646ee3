"""A route's refresh: import fresh data and/or train a new solution version before the batch job.

    RECEIVED -> DATA IMPORTING -> TRAINING -> (start_job) CREATE PENDING | QUEUED ...
                      |               |
                      +---------------+--> CREATE FAILED  (the step, and Personalize's reason)

Submit moves a validated job of a refreshing route to its first step; each monitor tick then advances
it one step (``advance``). A step is started once: its Personalize name is the job's name, so a tick
repeated after a lost save finds the same import job or solution version instead of starting another.
"Not now" (LimitExceeded, ResourceInUse, throttling, no answer) waits for the next tick. Anything but
ACTIVE or CREATE FAILED is still running. The trained version is the one the batch job runs.
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from batchrecs.errors import PersonalizeLimitExceeded, PersonalizeRejected, PersonalizeUnavailable
from batchrecs.jobs.lifecycle import start_job
from batchrecs.jobs.model import CREATE_FAILED, DATA_IMPORTING, TRAINING, Job
from batchrecs.ports import PersonalizeJobs
from batchrecs.routes.config import Refresh

logger = Logger(child=True)

_STEP_NAMES = {DATA_IMPORTING: "dataset import", TRAINING: "training"}


def first_step(refresh: Refresh) -> str:
    return DATA_IMPORTING if refresh.datasetImport is not None else TRAINING


def advance(job: Job, refresh: Refresh, personalize: PersonalizeJobs, now: str) -> Job:
    """One tick of the job's refresh: the job as it is now (unchanged while a step runs)."""
    request = json.loads(job.request or "{}")
    try:
        if job.status == DATA_IMPORTING:
            return _import(job, refresh, request, personalize, now)
        return _train(job, refresh, request, personalize, now)
    except (PersonalizeLimitExceeded, PersonalizeUnavailable) as exc:
        logger.info("refresh step waits", extra={"job_name": job.jobName, "reason": str(exc)})
        return job
    except PersonalizeRejected as exc:
        return _failed(job, f"could not start: {exc}", now)


def _import(job: Job, refresh: Refresh, request: dict, personalize: PersonalizeJobs, now: str) -> Job:
    step = refresh.datasetImport
    if step is None:
        raise ValueError(f"job {job.jobName} is {job.status} but its route imports no data")
    if job.refreshImportArn is None:
        arn = personalize.start_data_import(
            job.jobName,
            step.datasetArn,
            f"s3://{job.sourceBucket}/{step.dataKey}",
            request["roleArn"],
            step.importMode,
        )
        logger.info("dataset import started", extra={"job_name": job.jobName, "import": arn})
        return job.model_copy(update={"refreshImportArn": arn, "updatedAt": now})
    going_on = _poll(job, job.refreshImportArn, personalize, now)
    if going_on is not None:
        return going_on
    if refresh.train is not None:
        return job.moved_to(TRAINING, now)
    return start_job(job, personalize, now)  # the batch job reads the new data at its newest version


def _train(job: Job, refresh: Refresh, request: dict, personalize: PersonalizeJobs, now: str) -> Job:
    if refresh.train is None or "solutionArn" not in request:
        raise ValueError(f"job {job.jobName} is {job.status} but its route trains no solution")
    if job.refreshVersionArn is None:
        arn = personalize.start_training(request["solutionArn"], refresh.train.trainingMode, job.jobName)
        logger.info("training started", extra={"job_name": job.jobName, "solution_version": arn})
        return job.model_copy(update={"refreshVersionArn": arn, "updatedAt": now})
    going_on = _poll(job, job.refreshVersionArn, personalize, now)
    if going_on is not None:
        return going_on
    # the batch job runs the version trained for it (not whatever is newest by then)
    request.pop("solutionArn")
    request["solutionVersionArn"] = job.refreshVersionArn
    return start_job(
        job.model_copy(update={"request": json.dumps(request, sort_keys=True)}), personalize, now
    )


def _poll(job: Job, arn: str, personalize: PersonalizeJobs, now: str) -> Job | None:
    """None once the step is ACTIVE; else the job as it goes on (failed, or as it is while it runs)."""
    status, reason = personalize.step_status(arn)
    if status == CREATE_FAILED:
        return _failed(job, f"{arn}: {reason}", now)
    return None if status == "ACTIVE" else job


def _failed(job: Job, reason: str, now: str) -> Job:
    return job.moved_to(
        CREATE_FAILED, now, failureReason=f"refresh {_STEP_NAMES[job.status]} failed: {reason}"
    )
