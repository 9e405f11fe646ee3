"""S3 'Object Created' under input/ (via EventBridge) -> validate -> Personalize batch job."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import submitter, upload_from_event

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=S3EventNotificationEventBridgeModel)
def handler(event: S3EventNotificationEventBridgeModel, context: LambdaContext) -> dict:
    job = submitter().handle(upload_from_event(event))
    if job is None:
        return {"ignored": event.detail.object.key}
    metrics.add_metric(name="UploadsHandled", unit=MetricUnit.Count, value=1)
    return {"jobName": job.jobName, "status": job.status}
