"""Composition roots: settings -> adapters -> service, built once per Lambda container."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

from batchrecs.aws.events import EventBridgePublisher
from batchrecs.aws.jobs_table import DynamoDBJobStore
from batchrecs.aws.personalize import PersonalizeBatchJobs
from batchrecs.aws.s3 import S3Objects
from batchrecs.export.service import Exporter
from batchrecs.monitor.service import Monitor
from batchrecs.routes.config import load_routes
from batchrecs.settings import ExportSettings, MonitorSettings, SubmitSettings
from batchrecs.sinks.dynamodb import DynamoDBRecordSink
from batchrecs.submit.service import Submitter, Upload


@cache
def submitter() -> Submitter:
    settings = SubmitSettings()  # type: ignore[call-arg]
    return Submitter(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        personalize=PersonalizeBatchJobs(),
        events=EventBridgePublisher(settings.event_bus_name),
        role_arn=settings.personalize_role_arn,
    )


@cache
def monitor() -> Monitor:
    settings = MonitorSettings()  # type: ignore[call-arg]
    load_routes(settings.routes_file)  # fail at startup on a bad routes file, like the other functions
    return Monitor(
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        personalize=PersonalizeBatchJobs(),
        events=EventBridgePublisher(settings.event_bus_name),
    )


@cache
def exporter() -> Exporter:
    settings = ExportSettings()  # type: ignore[call-arg]
    return Exporter(
        routes=load_routes(settings.routes_file),
        jobs=DynamoDBJobStore(settings.jobs_table_name),
        objects=S3Objects(),
        events=EventBridgePublisher(settings.event_bus_name),
        sink_factory=lambda: DynamoDBRecordSink(settings.recommendations_table_name),
    )


def upload_from_event(event: S3EventNotificationEventBridgeModel) -> Upload:
    """The object an S3 'Object Created' event names; its identity is the version id or sequencer."""
    obj = event.detail.object
    identity = obj.version_id or obj.sequencer or obj.etag or ""
    return Upload(bucket=event.detail.bucket.name, key=obj.key, size=int(obj.size or 0), identity=identity)
