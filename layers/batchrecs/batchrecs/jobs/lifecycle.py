"""Starting a job in Personalize and recording each status change (publish first, then save)."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger

from batchrecs.errors import (
    JobConflictError,
    PersonalizeJobExists,
    PersonalizeLimitExceeded,
    PersonalizeRejected,
    PersonalizeRouteRefused,
    PersonalizeUnavailable,
)
from batchrecs.formats.events import JOB_STATE_CHANGE
from batchrecs.jobs.model import CREATE_FAILED, CREATE_PENDING, QUEUED, REJECTED, Job
from batchrecs.jobs.naming import job_arn
from batchrecs.ports import EventPublisher, JobStore, PersonalizeJobs
from batchrecs.routes.config import JobKind

logger = Logger(child=True)


def start_job(job: Job, personalize: PersonalizeJobs, now: str) -> Job:
    """Create the job from its stored request: CREATE PENDING; QUEUED when Personalize says "not now"
    (the 5-job limit, ResourceInUse, throttling, a 5xx or no answer: the monitor submits it again);
    CREATE FAILED when it says no, REJECTED when what it names does not exist. A request naming a
    solution (a ``solutionArn`` route) gets the solution's newest ACTIVE version now; with none, the job
    is REJECTED (nothing to run: a retry would not help)."""
    if job.kind is None or job.request is None:
        raise ValueError(f"job {job.jobName} has no request to submit")
    kind = JobKind(job.kind)
    request = json.loads(job.request)
    solution = request.pop("solutionArn", None)
    try:
        if solution is not None:
            versions = personalize.solution_versions(solution)
            if versions.newest_active is None:
                found = ", ".join(f"{count} {status}" for status, count in sorted(versions.statuses.items()))
                reason = (
                    f"solution {solution} has no ACTIVE solution version ({found or 'no versions'}): "
                    "train one, or pin the route to a solutionVersionArn"
                )
                return job.moved_to(REJECTED, now, failureReason=reason)
            request["solutionVersionArn"] = versions.newest_active
        arn = personalize.create(kind, request)
    except (PersonalizeLimitExceeded, PersonalizeUnavailable) as exc:
        logger.warning("job waits for Personalize", extra={"job_name": job.jobName, "reason": str(exc)})
        return job if job.status == QUEUED else job.moved_to(QUEUED, now)
    except PersonalizeJobExists:
        arn = job_arn(request["solutionVersionArn"], job.jobName, kind.is_segment)
    except PersonalizeRejected as exc:
        if solution is not None and "solutionVersionArn" not in request:  # the solution itself: no such
            return job.moved_to(REJECTED, now, failureReason=f"solution {solution}: {exc}")
        if isinstance(exc, PersonalizeRouteRefused):  # what the route names does not exist, or too many tags
            return job.moved_to(REJECTED, now, failureReason=str(exc))
        return job.moved_to(CREATE_FAILED, now, failureReason=str(exc))
    version = request["solutionVersionArn"]
    return job.moved_to(
        CREATE_PENDING,
        now,
        jobArn=arn,
        solutionVersionArn=version,
        request=json.dumps(request, sort_keys=True),
    )


def record_change(job: Job, previous_status: str, jobs: JobStore, events: EventPublisher) -> bool:
    """Publish the job's state change, then save it if nobody moved it meanwhile.

    Publishing first means a crash between the two repeats the event rather than losing it; consumers
    are idempotent. Returns False when the save lost a race (the newer state wins).
    """
    events.publish(JOB_STATE_CHANGE, job.state_change())
    try:
        jobs.save(job, expected_status=previous_status)
    except JobConflictError:
        logger.info("job changed meanwhile", extra={"job_name": job.jobName, "status": job.status})
        return False
    return True
