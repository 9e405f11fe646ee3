"""Composition roots: settings -> adapters -> service, built once per Lambda container.

``build_*`` take an optional Personalize client so tests can stub Personalize at the botocore level
while everything else is real.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from batchrecs.aws.directory import DirectoryAddressBook
from batchrecs.aws.events import EventBridgePublisher
from batchrecs.aws.jobs_table import DynamoDBJobStore
from batchrecs.aws.personalize import PersonalizeBatchJobs
from batchrecs.aws.s3 import S3Objects
from batchrecs.aws.ses import SesContactLists
from batchrecs.aws.sqs import SqsChunkQueue
from batchrecs.export.contacts import ContactImporter, address_book_for
from batchrecs.export.service import ChunkExporter, ExportPlanner
from batchrecs.monitor.service import Monitor
from batchrecs.ports import RecordSink
from batchrecs.routes.config import DynamoDBDestination, Route, load_routes
from batchrecs.settings import ExportSettings, ExportWorkerSettings, MonitorSettings, SubmitSettings
from batchrecs.sinks.fast_dynamodb import AdaptiveRate, ShardedRecordSink, SignedBatchWriter
from batchrecs.submit.service import Submitter, Upload


def build_submitter(settings: SubmitSettings, personalize_client: Any = None) -> Submitter:
    return Submitter(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        personalize=PersonalizeBatchJobs(personalize_client),
        events=EventBridgePublisher(settings.event_bus_name),
        role_arn=settings.personalize_role_arn,
    )


def build_monitor(settings: MonitorSettings, personalize_client: Any = None) -> Monitor:
    return Monitor(
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        personalize=PersonalizeBatchJobs(personalize_client),
        events=EventBridgePublisher(settings.event_bus_name),
        routes=load_routes(settings.routes_file),  # a bad routes file fails at startup
        contacts=ContactImporter(S3Objects(), SesContactLists()),
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


INITIAL_WRITES_PER_SECOND = 1000.0  # per worker; AIMD takes it up to what the table accepts


def build_chunk_exporter(settings: ExportWorkerSettings) -> ChunkExporter:
    writer = SignedBatchWriter()  # its connections are kept for the container's life

    def sink_for(route: Route) -> RecordSink:
        if not isinstance(route.destination, DynamoDBDestination):
            raise TypeError(f"route {route.name} does not export to DynamoDB")
        # At most this many of the route's chunks run at once (its FIFO groups, within the stack's
        # bound), so an equal share each keeps the budget a cap across all of them.
        budget = route.destination.maxWritesPerSecond
        workers = min(
            route.maxExportWorkers or settings.export_worker_concurrency, settings.export_worker_concurrency
        )
        share = budget / workers if budget else float("inf")
        return ShardedRecordSink(
            settings.recommendations_table_name,
            writer,
            threads=settings.export_writer_threads,
            rate=AdaptiveRate(initial=min(INITIAL_WRITES_PER_SECOND, share), maximum=share),
        )

    return ChunkExporter(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        events=EventBridgePublisher(settings.event_bus_name),
        sink_factory=sink_for,
        max_receives=settings.chunk_max_receives,
        address_books=lambda destination: address_book_for(destination, DirectoryAddressBook),
    )


@cache
def submitter() -> Submitter:
    return build_submitter(SubmitSettings())  # type: ignore[call-arg]


@cache
def monitor() -> Monitor:
    return build_monitor(MonitorSettings())  # type: ignore[call-arg]


@cache
def planner() -> ExportPlanner:
    return build_planner(ExportSettings())  # type: ignore[call-arg]


@cache
def chunk_exporter() -> ChunkExporter:
    return build_chunk_exporter(ExportWorkerSettings())  # type: ignore[call-arg]


def upload_from_event(event: S3EventNotificationEventBridgeModel) -> Upload:
    """The object an S3 'Object Created' event names, identified by its sequencer and version id.

    The sequencer differs for every write of a key; unversioned buckets send the version id "null".
    """
    obj = event.detail.object
    version = obj.version_id if obj.version_id and obj.version_id != "null" else None
    identity = "/".join(part for part in (obj.sequencer, version) if part) or (obj.etag or "")
    return Upload(bucket=event.detail.bucket.name, key=obj.key, size=int(obj.size or 0), identity=identity)
