"""From an uploaded object to a submitted, queued or rejected job. Idempotent per upload."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aws_lambda_powertools import Logger

from batchrecs import layout
from batchrecs.clock import utc_now
from batchrecs.errors import BatchrecsError, ObjectChangedError, UnknownRouteError
from batchrecs.formats.input_files import MAX_INPUT_BYTES
from batchrecs.formats.input_lines import Problem
from batchrecs.jobs import refresh
from batchrecs.jobs.lifecycle import record_change, start_job
from batchrecs.jobs.model import IN_PARTS, RECEIVED, REJECTED, Job, inflight_of
from batchrecs.jobs.naming import file_stem, job_name, part_job_name, scheduled_job_name
from batchrecs.ports import EventPublisher, JobStore, ObjectStore, PersonalizeJobs
from batchrecs.routes.config import Route, RoutesConfig, snapshot
from batchrecs.submit.parts import StagedPart, StagedParts
from batchrecs.submit.request import build_request
from batchrecs.submit.validation import ValidationResult, validate_for_route, validate_upload_size

logger = Logger(child=True)


@dataclass(frozen=True)
class Upload:
    """An object that appeared under ``input/``: where it is and which version of it this is."""

    bucket: str
    key: str
    size: int
    identity: str  # version id if the bucket is versioned, else the event's sequencer
    version_id: str | None = None  # what the event names: the job reads exactly that upload
    etag: str | None = None

    @property
    def route_and_name(self) -> tuple[str, str]:
        """``input/<route>/<name>`` -> (route, name); a file directly under ``input/`` has no route."""
        return layout.route_and_name(self.key)


class Submitter:
    def __init__(
        self,
        routes: RoutesConfig,
        jobs: JobStore,
        objects: ObjectStore,
        personalize: PersonalizeJobs,
        events: EventPublisher,
        role_arn: str,
        clock: Callable[[], str] = utc_now,
        kms_key_arn: str | None = None,
    ) -> None:
        self._routes = routes
        self._jobs = jobs
        self._objects = objects
        self._personalize = personalize
        self._events = events
        self._role_arn = role_arn
        self._kms_key_arn = kms_key_arn
        self._clock = clock

    def handle_scheduled(self, route_name: str, scheduled_time: str, bucket: str) -> Job | None:
        """A route's schedule fired for ``scheduled_time``: submit its standing input as an upload of it
        would be (one job per scheduled time, however often the tick is delivered). A missing standing
        input is a REJECTED job saying so; a route no longer scheduled is ignored (None)."""
        route = self._routes.routes.get(route_name)
        if route is None or route.standingInput is None:
            logger.warning(
                "schedule of a route without a standing input ignored", extra={"route": route_name}
            )
            return None
        key, identity = route.standingInput, f"scheduled {scheduled_time}"
        name = scheduled_job_name(route.name, key, scheduled_time)
        found = next((info for info in self._objects.list_objects(bucket, key) if info.key == key), None)
        if found is None:
            job = self._claim(Upload(bucket, key, 0, identity), route.name, name)
            if job.status != RECEIVED:
                return job
            reason = f"the standing input s3://{bucket}/{key} does not exist"
            problem = Problem(0, "the route's standingInput", reason)
            job = job.model_copy(update={"kind": route.kind.value, "routeSnapshot": snapshot(route)})
            return self._reject(
                job, layout.route_and_name(key)[1], {"fileProblem": problem.to_json()}, reason
            )
        return self.handle(Upload(bucket, key, found.size, identity, etag=found.etag), name)

    def handle(self, upload: Upload, name_of_job: str | None = None) -> Job | None:
        """Validate and submit one upload; a redelivered event returns the job already recorded."""
        if not upload.key.startswith(layout.INPUT) or upload.key.endswith("/"):
            logger.warning("ignored object outside input/ or folder marker", extra={"key": upload.key})
            return None
        route_name, name = upload.route_and_name
        scheduled = self._routes.routes.get(route_name)
        if name_of_job is None and scheduled is not None and scheduled.standingInput == upload.key:
            # the standing input of a scheduled route is data for its schedule, not a trigger: writing a
            # new one each week must not start (and retrain for) a job of its own
            logger.info("standing input updated: its schedule runs it", extra={"key": upload.key})
            return None
        job = self._claim(upload, route_name, name_of_job)
        if job.status != RECEIVED:
            logger.info("upload already handled", extra={"job_name": job.jobName, "status": job.status})
            return job
        try:
            route = self._routes.get(route_name)
        except UnknownRouteError as exc:
            problem = Problem(0, "a file under input/<route>/ for a configured route", str(exc))
            return self._reject(job, name, {"fileProblem": problem.to_json()}, str(exc))
        job = job.model_copy(update={"kind": route.kind.value, "routeSnapshot": snapshot(route)})
        too_large = validate_upload_size(upload.size, route.kind, route.onInvalidLines)
        if too_large is not None:
            report = too_large.report(source=f"s3://{upload.bucket}/{upload.key}", route=route.name)
            return self._reject(job, name, report, too_large.summary(), too_large)
        return self._validate_and_start(job, route, upload, name)

    def _claim(self, upload: Upload, route_name: str, name_of_job: str | None) -> Job:
        """The upload's job: recorded RECEIVED now, or as an earlier delivery left it."""
        now = self._clock()
        received = Job(
            jobName=name_of_job or job_name(route_name or "unrouted", upload.key, upload.identity),
            route=route_name,
            status=RECEIVED,
            inflight=inflight_of(RECEIVED),  # watched: a submit that never ends is reported
            sourceBucket=upload.bucket,
            sourceKey=upload.key,
            sourceIdentity=upload.identity,
            createdAt=now,
            updatedAt=now,
            history=[{"status": RECEIVED, "at": now}],
        )
        return self._jobs.claim(received)

    def _validate_and_start(self, job: Job, route: Route, upload: Upload, name: str) -> Job:
        stem, bucket = file_stem(name), upload.bucket
        staged_key = layout.staged_key(route.name, job.jobName, stem)
        staged = StagedParts(
            lambda: self._objects.writer(bucket, staged_key, "application/x-ndjson"),
            lambda number: self._objects.writer(
                bucket,
                layout.staged_key(route.name, part_job_name(job.jobName, number), stem),
                "application/x-ndjson",
            ),
            max_lines=route.maxLinesPerJob,
            refuse_parts=_why_not_in_parts(route),
        )
        try:
            result = validate_for_route(
                self._objects.iter_chunks(upload.bucket, upload.key, upload.version_id, upload.etag),
                name,
                route,
                staged,
            )
        except ObjectChangedError as exc:
            staged.abort()
            found = "it was replaced or deleted before it could be read (a newer upload is its own job)"
            problem = Problem(0, "the file as it was uploaded", found)
            return self._reject(job, name, {"fileProblem": problem.to_json()}, str(exc))
        except BaseException:
            staged.abort()
            raise
        context = {
            "source": f"s3://{upload.bucket}/{upload.key}",
            "route": route.name,
            "jobName": job.jobName,
        }
        if not result.accepted:
            staged.abort()
            return self._reject(job, name, result.report(**context), result.summary(), result)
        if staged.refused is not None:
            expected = (
                f"at most {route.maxLinesPerJob:,} unique lines and {MAX_INPUT_BYTES:,} bytes "
                f"(one job's input: {staged.refused})"
            )
            found = f"{result.totals.valid:,} unique lines, {result.staged_bytes:,} bytes"
            result.file_problem = Problem(0, expected, found)
            return self._reject(job, name, result.report(**context), result.summary(), result)
        staged.close()
        report_key = None
        if result.totals.invalid or result.totals.duplicates:
            report_key = layout.validation_report_key(job.jobName)
            self._objects.put_json(upload.bucket, report_key, result.report(**context))
        validated = job.model_copy(update={"validation": _totals(result), "reportKey": report_key})
        if staged.parts:
            return self._start_parts(validated, route, stem, staged.parts)
        started = self._start(validated, route, staged_key)
        logger.info(
            "upload handled",
            extra={"job_name": started.jobName, "status": started.status, "validation": _totals(result)},
        )
        return started

    def _start(self, job: Job, route: Route, staged_key: str, pinned_version: str | None = None) -> Job:
        """Submit the job reading ``staged_key`` (or start its route's refresh) and record it."""
        output_path = layout.output_path(job.sourceBucket, route.name, job.jobName)
        request = build_request(
            route,
            job.jobName,
            f"s3://{job.sourceBucket}/{staged_key}",
            output_path,
            self._role_arn,
            self._kms_key_arn,
        )
        if pinned_version is not None and "solutionArn" in request:
            del request["solutionArn"]
            request["solutionVersionArn"] = pinned_version
        prepared = job.model_copy(
            update={
                "stagedPath": f"s3://{job.sourceBucket}/{staged_key}",
                "outputPath": output_path,
                "request": json.dumps(request, sort_keys=True),
            }
        )
        if route.refresh is not None:  # fresh data and/or a new model first: the monitor runs the steps
            started = prepared.moved_to(refresh.first_step(route.refresh), self._clock())
        else:
            started = start_job(prepared, self._personalize, self._clock())
        self._record(started)
        return started

    def _start_parts(self, job: Job, route: Route, stem: str, parts: list[StagedPart]) -> Job:
        """An upload past one job's limits: a job per staged part (each claimed once under its own name,
        so a retried submit starts none twice), then the upload's job IN PARTS, which the monitor ends
        once every part has (``jobs.parts``). The parts of a ``solutionArn`` route run one version:
        its newest ACTIVE one now."""
        names = [part_job_name(job.jobName, number) for number in range(1, len(parts) + 1)]
        pinned = self._newest_active(route.solutionArn) if route.solutionArn else None
        for name, part in zip(names, parts, strict=True):
            claimed = self._jobs.claim(
                job.model_copy(
                    update={
                        "jobName": name,
                        "partOf": job.jobName,
                        "updatedAt": self._clock(),
                        "validation": {"valid": part.lines, "stagedBytes": part.bytes},
                        "reportKey": None,
                        "history": [{"status": RECEIVED, "at": self._clock()}],
                    }
                )
            )
            if claimed.status == RECEIVED:
                self._start(claimed, route, layout.staged_key(route.name, name, stem), pinned)
        split = job.moved_to(IN_PARTS, self._clock(), parts=names)
        self._record(split)
        logger.info(
            "upload handled in parts",
            extra={"job_name": job.jobName, "parts": len(names), "validation": job.validation},
        )
        return split

    def _newest_active(self, solution_arn: str) -> str | None:
        """The solution's newest ACTIVE version; None when Personalize cannot say now (each part then
        asks when it is submitted, and says why it cannot run)."""
        try:
            return self._personalize.solution_versions(solution_arn).newest_active
        except BatchrecsError as exc:
            logger.warning("parts not pinned to one version", extra={"reason": str(exc)})
            return None

    def _reject(
        self, job: Job, name: str, report: dict[str, Any], reason: str, result: ValidationResult | None = None
    ) -> Job:
        report_key = layout.rejected_report_key(job.route, job.jobName, name)
        self._objects.put_json(
            job.sourceBucket,
            report_key,
            {"source": f"s3://{job.sourceBucket}/{job.sourceKey}", "jobName": job.jobName, **report},
        )
        rejected = job.moved_to(
            REJECTED,
            self._clock(),
            reportKey=report_key,
            failureReason=reason,
            validation=_totals(result) if result else None,
        )
        self._record(rejected)
        logger.info("upload rejected", extra={"job_name": job.jobName, "report": report_key})
        return rejected

    def _record(self, job: Job) -> None:
        if not record_change(job, RECEIVED, self._jobs, self._events):
            logger.info("another delivery recorded this upload first", extra={"job_name": job.jobName})


def _why_not_in_parts(route: Route) -> str | None:
    """Why an upload of ``route`` past one job's limits cannot run as several jobs (None: it can)."""
    if route.replaces_previous:
        return "replacePrevious compares one job's input with the previous export's"
    if route.refresh is not None:
        return "a refresh trains one version for one batch job"
    return None


def _totals(result: ValidationResult) -> dict[str, int]:
    return asdict(result.totals)
