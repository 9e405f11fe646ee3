"""'Batch Job State Change' with status ACTIVE -> split the job's .out files into chunks on the queue."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import planner
from batchrecs.formats.events import JobStateChangeEvent

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=JobStateChangeEvent)
def handler(event: JobStateChangeEvent, context: LambdaContext) -> dict:
    job = planner().handle(event.detail, completed_at=event.time)
    metrics.add_metric(name="ExportChunksPlanned", unit=MetricUnit.Count, value=job.chunksTotal or 0)
    return {"jobName": job.jobName, "status": job.status, "chunks": job.chunksTotal}
