"""Every minute: poll in-flight Personalize jobs, submit queued ones, publish state changes."""

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import monitor
from batchrecs.monitor.service import MonitorError, MonitorSummary

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=EventBridgeModel)
def handler(event: EventBridgeModel, context: LambdaContext) -> dict:
    try:
        summary = monitor().tick()
    except MonitorError as failed:  # what the tick did counts all the same; it fails, to be retried
        _publish(failed.summary)
        raise
    _publish(summary)
    return asdict(summary)


def _publish(summary: MonitorSummary) -> None:
    metrics.add_metric(name="JobStatusChanges", unit=MetricUnit.Count, value=summary.changed)
    metrics.add_metric(name="JobsRunning", unit=MetricUnit.Count, value=summary.polled)
    metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=summary.still_queued)
    metrics.add_metric(name="ContactImportsRunning", unit=MetricUnit.Count, value=summary.importing)
    metrics.add_metric(name="JobsStuck", unit=MetricUnit.Count, value=summary.stuck)
    metrics.add_metric(name="JobsOverTimeLimit", unit=MetricUnit.Count, value=summary.over_time_limit)
    for seconds in summary.job_seconds:  # upload to the end of the Personalize job
        metrics.add_metric(name="PersonalizeJobSeconds", unit=MetricUnit.Seconds, value=seconds)
