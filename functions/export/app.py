"""'Batch Job State Change' with status ACTIVE -> .out files -> per-user records in DynamoDB."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import exporter
from batchrecs.formats.events import JobStateChangeEvent

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=JobStateChangeEvent)
def handler(event: JobStateChangeEvent, context: LambdaContext) -> dict:
    job = exporter().handle(event.detail, completed_at=event.time)
    metrics.add_metric(
        name="RecordsWritten", unit=MetricUnit.Count, value=(job.export or {}).get("recordsWritten", 0)
    )
    return {"jobName": job.jobName, "status": job.status, **(job.export or {})}
