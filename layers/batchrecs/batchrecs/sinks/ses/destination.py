"""The SES destination: each chunk's users are staged as contacts; after the last chunk the job is
IMPORTING and each monitor tick advances its SES import jobs (see ``contacts``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger

from batchrecs import layout
from batchrecs.clock import iso, utc_now
from batchrecs.errors import BatchrecsError
from batchrecs.export.progress import LineReport, report_key
from batchrecs.formats.output_lines import SegmentLine
from batchrecs.jobs.model import EXPORT_FAILED, EXPORTED, IMPORTING, Job
from batchrecs.jobs.progress import Advance, ChunkCounts, ChunkWork, themed
from batchrecs.ports import ObjectStore
from batchrecs.routes.config import Route
from batchrecs.sinks.ses.contacts import ContactImporter, ContactStager, ScanProgress, staged_tail
from batchrecs.sinks.ses.opt_outs import OptOutKeeper
from batchrecs.sinks.ses.ports import AddressBook
from batchrecs.sinks.ses.settings import SesDestination

logger = Logger(child=True)

# A monitor tick reads an export's contact list for this long at most (the function has 900 s); a longer
# list is read over several ticks from where the last one stopped.
IMPORT_STEP_SECONDS = 300.0


class SesContacts:
    def __init__(
        self,
        objects: ObjectStore,
        importer: ContactImporter,
        address_books: Callable[[SesDestination], AddressBook],
        clock: Callable[[], str] = utc_now,
        newer_upload: Callable[[Job], str | None] = lambda job: None,
        opt_outs: OptOutKeeper | None = None,
        step_seconds: float = IMPORT_STEP_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._objects = objects
        self._importer = importer
        self._address_books = address_books
        self._clock = clock
        self._newer_upload = newer_upload  # JobStore.newer_upload_exporting
        self._opt_outs = opt_outs  # the monitor's: puts back opt-outs an import overwrote
        self._step_seconds = step_seconds  # a tick reads the contact list this long, then goes on later
        self._monotonic = monotonic

    def write_chunk(self, work: ChunkWork) -> ChunkCounts:
        """Stage the chunk's users as contacts (``exports/<job>/contacts/<chunk>.jsonl``, rewritten
        whole by a redelivered chunk); segments without a topic are unusable lines."""
        destination, message, counts = _ses(work.route), work.message, work.counts
        context = {"route": work.route.name, "jobName": work.job_name, "generatedAt": iso(work.generated_at)}
        if work.solution_version:
            context["solutionVersionArn"] = work.solution_version
        missing = LineReport(self._objects, message.bucket, report_key(message, "missing-addresses"))
        out = self._objects.writer(
            message.bucket, layout.staged_contacts_key(work.job_name, message.chunkId), "application/x-ndjson"
        )
        stager = ContactStager(
            self._address_books(destination), out, lambda user: missing.add({"userId": user})
        )
        try:
            for offset, parsed in work.lines:
                if isinstance(parsed, SegmentLine):
                    topic = (destination.segmentTopics or {}).get(parsed.segment)
                    if topic is None:
                        work.fail(
                            offset, f"segment {parsed.segment!r} has no topic in the route's segmentTopics"
                        )
                        continue
                    tail = staged_tail([topic], {**context, "segments": [parsed.segment]})
                    for user in parsed.users():
                        stager.add(user, tail)
                else:
                    parsed = themed(parsed, work.route, counts)
                    extra: dict[str, Any] = {}
                    if parsed.scores:
                        extra["scores"] = [float(text) for text in parsed.scores]
                    if parsed.theme is not None:  # the campaign template can show the theme
                        extra["theme"] = parsed.theme
                    attributes = {**context, "items": parsed.items, **extra}
                    stager.add(parsed.key, staged_tail([destination.topic or ""], attributes))
            stager.flush()
            out.close()
        except BaseException:
            out.abort()
            missing.abort()
            raise
        missing.close()
        counts.written = counts.lines - counts.failed
        counts.records, counts.missing = stager.counts.contacts, stager.counts.missing
        return counts

    def remove_chunk(self, route: Route, ids: Iterable[str], counts: ChunkCounts) -> ChunkCounts:
        raise BatchrecsError(f"route {route.name}: an SES export does not replace the previous one")

    def after_last_chunk(self, job: Job, now: str) -> Job:
        """IMPORTING, with no import jobs yet: a re-driven or re-exported job imports its contacts anew."""
        return job.moved_to(
            IMPORTING, now, importJobs=None, contactImport=None, preferencesReadAt=None, contactScan=None
        )

    def advance(self, job: Job, route: Route) -> Advance:
        """Start the export's import jobs, or finish it once they have ended.

        Started imports are recorded on the job by the caller; if that save is lost the next tick starts
        them again, which imports the same contacts again (a PUT of the same data).
        """
        destination = _ses(route)
        if not job.outputPath:
            raise BatchrecsError(f"job {job.jobName} has no output path")
        bucket = layout.output_prefix(job.outputPath)[0]
        if job.importJobs is None:
            newer = self._newer_upload(job)
            if newer:  # the newest upload of the file wins: its contacts must not be overwritten
                logger.info("contact import superseded", extra={"job_name": job.jobName, "newer": newer})
                superseded = job.model_copy(update={"exportSuperseded": job.exportWritten or 0})
                return Advance(superseded, EXPORTED)
            problem = self._importer.topic_problem(destination)
            if problem:  # the import cannot do what the route asks: say so once, before importing anything
                return Advance(job, EXPORT_FAILED, problem)
            if job.contactScan is None:  # before the preferences are read: the opt-outs' snapshot time
                job = job.model_copy(update={"preferencesReadAt": self._clock(), "contactScan": {}})
            progress = ScanProgress(**(job.contactScan or {}))
            if not progress.done:  # (read to its end before: only the merge is left)
                ends = self._monotonic() + self._step_seconds
                progress = self._importer.scan(
                    bucket,
                    job.jobName,
                    destination.contactList,
                    progress,
                    time_left=lambda: self._monotonic() < ends,
                )
                job = job.model_copy(update={"contactScan": asdict(progress), "updatedAt": self._clock()})
            if not progress.done:  # a long list is read over several ticks, each bounded
                logger.info(
                    "contact list read in part", extra={"job_name": job.jobName, "pages": progress.pages}
                )
                return Advance(job)
            plan = self._importer.merge(bucket, job.jobName, destination)
            job_ids = self._importer.start(bucket, plan.files, destination)
            job = job.model_copy(
                update={"importJobs": job_ids, "contactImport": plan.counts, "updatedAt": self._clock()}
            )
            logger.info("contact imports started", extra={"job_name": job.jobName, **plan.counts})
            if job_ids:
                return Advance(job)
        result = self._importer.poll(job.importJobs or [])
        if result is None:
            return Advance(job)
        failure = result.pop("failure")
        if self._opt_outs is not None and job.preferencesReadAt:  # opt-outs made while it ran are put back
            result["optOutsRestored"] = self._opt_outs.restore(destination.contactList, job.preferencesReadAt)
        ended = job.model_copy(update={"contactImport": {**(job.contactImport or {}), **result}})
        return Advance(ended, EXPORT_FAILED if failure else EXPORTED, failure)


def _ses(route: Route) -> SesDestination:
    if not isinstance(route.destination, SesDestination):
        raise BatchrecsError(f"route {route.name} no longer exports to SES")
    return route.destination
