"""SES 'Subscription' events (a recipient changed their topic preferences) -> the preference ledger,
read by the monitor to put back opt-outs that an SES import overwrote."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import preference_ledger
from batchrecs.sinks.ses.opt_outs import NotASubscriptionEvent, subscription_change

logger, tracer, metrics = Logger(), Tracer(), Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    try:
        change = subscription_change(event.get("detail") or {})
    except NotASubscriptionEvent as exc:  # counted and logged (no address), not retried: it cannot change
        logger.warning("event not recorded", extra={"reason": str(exc), "event_id": event.get("id")})
        metrics.add_metric(name="PreferenceEventsUnrecorded", unit=MetricUnit.Count, value=1)
        return {"recorded": False, "reason": str(exc)}
    preference_ledger().record(change)
    metrics.add_metric(name="PreferenceChangesRecorded", unit=MetricUnit.Count, value=1)
    return {
        "recorded": True,
        "at": change.at,
        "optOuts": len(change.opted_out_topics) + change.unsubscribe_all,
    }
