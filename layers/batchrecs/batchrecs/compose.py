"""Composition roots: settings -> adapters -> service, built once per Lambda container.

``build_*`` take an optional Personalize client so tests can stub Personalize at the botocore level
while everything else is real.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from pydantic import BaseModel, Field

from batchrecs.aws.directory import DirectoryAddressBook
from batchrecs.aws.dynamodb_batches import SignedBatchWriter
from batchrecs.aws.events import EventBridgePublisher
from batchrecs.aws.jobs_table import DynamoDBJobStore
from batchrecs.aws.personalize import PersonalizeBatchJobs
from batchrecs.aws.preference_ledger import DynamoDBPreferenceLedger
from batchrecs.aws.s3 import S3Objects
from batchrecs.aws.scheduler import EventBridgeSchedules
from batchrecs.aws.ses import SesContactLists
from batchrecs.aws.sqs import SqsChunkQueue
from batchrecs.errors import BatchrecsError
from batchrecs.export.planner import ExportPlanner
from batchrecs.export.worker import ChunkExporter
from batchrecs.monitor import schedules
from batchrecs.monitor.service import Monitor
from batchrecs.ports import Destination
from batchrecs.routes.config import Route, load_routes
from batchrecs.settings import (
    ExportSettings,
    ExportWorkerSettings,
    MonitorSettings,
    PreferenceLedgerSettings,
    SubmitSettings,
)
from batchrecs.sinks.dynamodb.destination import DynamoDBRecords, sink_factory
from batchrecs.sinks.ses.contacts import ContactImporter, address_book_for
from batchrecs.sinks.ses.destination import SesContacts
from batchrecs.sinks.ses.opt_outs import OptOutKeeper
from batchrecs.submit.service import Submitter, Upload


def build_submitter(settings: SubmitSettings, personalize_client: Any = None) -> Submitter:
    return Submitter(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        personalize=PersonalizeBatchJobs(personalize_client),
        events=EventBridgePublisher(settings.event_bus_name),
        role_arn=settings.personalize_role_arn,
        kms_key_arn=settings.data_kms_key_arn or None,
    )


def destinations(**builders: Callable[[], Destination]) -> Callable[[Route], Destination]:
    """Each route's destination by its type (``type: <name>`` in the routes file); each is built once,
    when a route first needs it. A type without a builder has nothing to do here: the monitor is given
    only the destinations that go on after their chunks (SES).

    A new destination is a folder under ``sinks/``, its settings in ``routes.config.Route`` and a
    builder in ``build_chunk_exporter``.
    """
    built: dict[str, Destination] = {}

    def destination_for(route: Route) -> Destination:
        kind = route.destination.type
        if kind not in built:
            if kind not in builders:
                raise BatchrecsError(f"route {route.name} exports to {kind}, which has no step here")
            built[kind] = builders[kind]()
        return built[kind]

    return destination_for


def _ses_contacts(jobs_table: str, preference_ledger: str | None = None) -> Callable[[], Destination]:
    """The SES destination; the monitor's (which runs the imports) also puts back opt-outs."""

    def build() -> SesContacts:
        lists = SesContactLists()
        return SesContacts(
            S3Objects(),
            ContactImporter(S3Objects(), lists),
            lambda destination: address_book_for(destination, DirectoryAddressBook),
            newer_upload=DynamoDBJobStore(jobs_table).newer_upload_exporting,
            opt_outs=(
                OptOutKeeper(DynamoDBPreferenceLedger(preference_ledger), lists)
                if preference_ledger
                else None
            ),
        )

    return build


def build_monitor(settings: MonitorSettings, personalize_client: Any = None) -> Monitor:
    routes = load_routes(settings.routes_file)  # a bad routes file fails at startup
    group = EventBridgeSchedules(
        settings.schedule_group_name,
        settings.submit_function_arn,
        settings.scheduler_role_arn,
        settings.failed_events_queue_arn,
    )
    return Monitor(
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        personalize=PersonalizeBatchJobs(personalize_client),
        events=EventBridgePublisher(settings.event_bus_name),
        routes=routes,
        sync_schedules=lambda: schedules.sync(group, routes, settings.data_bucket_name),
        destination_for=destinations(  # the one destination with a step after its chunks
            ses=_ses_contacts(settings.jobs_table_name, settings.preference_ledger_table_name)
        ),
    )


def build_planner(settings: ExportSettings) -> ExportPlanner:
    return ExportPlanner(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        queue=SqsChunkQueue(settings.chunks_queue_url),
        events=EventBridgePublisher(settings.event_bus_name),
        chunk_bytes=settings.export_chunk_bytes,
    )


def build_chunk_exporter(settings: ExportWorkerSettings) -> ChunkExporter:
    writer = SignedBatchWriter()  # its connections are kept for the container's life
    sink_for = sink_factory(
        settings.recommendations_table_name,
        writer,
        worker_concurrency=settings.export_worker_concurrency,
        threads=settings.export_writer_threads,
    )
    return ChunkExporter(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        events=EventBridgePublisher(settings.event_bus_name),
        destination_for=destinations(
            dynamodb=lambda: DynamoDBRecords(sink_for), ses=_ses_contacts(settings.jobs_table_name)
        ),
        max_receives=settings.chunk_max_receives,
        queue=SqsChunkQueue(settings.chunks_queue_url),
        first_retry_seconds=settings.chunk_retry_seconds,
    )


@cache
def submitter() -> Submitter:
    return build_submitter(SubmitSettings())  # type: ignore[call-arg]


@cache
def preference_ledger() -> DynamoDBPreferenceLedger:
    settings = PreferenceLedgerSettings()  # type: ignore[call-arg]
    return DynamoDBPreferenceLedger(
        settings.preference_ledger_table_name, settings.contact_data_retention_days
    )


@cache
def monitor() -> Monitor:
    return build_monitor(MonitorSettings())  # type: ignore[call-arg]


@cache
def planner() -> ExportPlanner:
    return build_planner(ExportSettings())  # type: ignore[call-arg]


@cache
def chunk_exporter() -> ChunkExporter:
    return build_chunk_exporter(ExportWorkerSettings())  # type: ignore[call-arg]


class ScheduledRun(BaseModel):
    """What a route's schedule sends the submit function: the route, the bucket of its standing input,
    and the time the run was scheduled for (EventBridge Scheduler's ``<aws.scheduler.scheduled-time>``)."""

    route: str = Field(min_length=1)
    bucket: str = Field(min_length=3)
    scheduledTime: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def upload_from_event(event: S3EventNotificationEventBridgeModel) -> Upload:
    """The object an S3 'Object Created' event names, identified by its sequencer and version id.

    The sequencer differs for every write of a key; unversioned buckets send the version id "null".
    """
    obj = event.detail.object
    version = obj.version_id if obj.version_id and obj.version_id != "null" else None
    identity = "/".join(part for part in (obj.sequencer, version) if part) or (obj.etag or "")
    return Upload(
        bucket=event.detail.bucket.name,
        key=obj.key,
        size=int(obj.size or 0),
        identity=identity,
        version_id=version,
        etag=obj.etag or None,
    )
