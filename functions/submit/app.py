"""S3 'Object Created' under input/ (via EventBridge), or a route's schedule firing -> validate -> a
Personalize batch job (or a refresh first)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import ScheduledRun, submitter, upload_from_event

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    if "scheduledRun" in event:  # {"scheduledRun": {route, bucket, scheduledTime}} from the route's schedule
        run = parse(event=event["scheduledRun"], model=ScheduledRun)
        job = submitter().handle_scheduled(run.route, run.scheduledTime, run.bucket)
        if job is None:  # a tick delivered again
            metrics.add_metric(name="UploadsIgnored", unit=MetricUnit.Count, value=1)
            return {"ignored": run.route}
    else:
        upload = parse(event=event, model=S3EventNotificationEventBridgeModel)
        job = submitter().handle(upload_from_event(upload))
        if job is None:  # an event delivered again, or a route's standing input written
            metrics.add_metric(name="UploadsIgnored", unit=MetricUnit.Count, value=1)
            return {"ignored": upload.detail.object.key}
    metrics.add_metric(name="UploadsHandled", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="UploadsRejected", unit=MetricUnit.Count, value=int(job.status == "REJECTED"))
    validation = job.validation or {}
    metrics.add_metric(name="LinesValidated", unit=MetricUnit.Count, value=validation.get("lines", 0))
    metrics.add_metric(name="LinesInvalid", unit=MetricUnit.Count, value=validation.get("invalid", 0))
    return {"jobName": job.jobName, "status": job.status}
