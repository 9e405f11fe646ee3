"""Chunks queue -> one byte range of a job's output -> per-user records (partial batch failures)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchrecs.compose import chunk_exporter
from batchrecs.formats.events import ChunkRecord

logger, tracer, metrics = Logger(), Tracer(), Metrics()
# The chunks queue is FIFO; chunks are independent, so a failed one only holds back its own group
processor = SqsFifoPartialProcessor(model=ChunkRecord, skip_group_on_error=True)


def export_chunk(record: ChunkRecord) -> None:
    receives = int(record.attributes.ApproximateReceiveCount)
    metrics.add_metric(name="ChunksReceived", unit=MetricUnit.Count, value=1)
    try:
        counts = chunk_exporter().handle_delivery(record.body, receives, record.receiptHandle)
    except Exception:
        metrics.add_metric(name="ChunksFailed", unit=MetricUnit.Count, value=1)  # retried, then dead-lettered
        raise
    if counts is not None:  # None: counted before (a redelivery)
        metrics.add_metric(name="ChunksExported", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="RecordsWritten", unit=MetricUnit.Count, value=counts.records)
        metrics.add_metric(name="LinesFailed", unit=MetricUnit.Count, value=counts.failed)
        metrics.add_metric(name="WriteThrottles", unit=MetricUnit.Count, value=counts.throttles)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=export_chunk, processor=processor, context=context
    )
