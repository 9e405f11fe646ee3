"""The export worker's composition: each route's write budget is shared by the workers it may have."""

from __future__ import annotations

import pytest
from batchrecs.compose import build_chunk_exporter
from batchrecs.routes.config import parse_routes
from batchrecs.settings import ExportWorkerSettings
from batchrecs.sinks.dynamodb.destination import INITIAL_WRITES_PER_SECOND, DynamoDBRecords
from batchrecs.sinks.dynamodb.writer import ShardedRecordSink

ARN = "arn:aws:personalize:us-east-1:123456789012:solution/home/1"
ROUTES = f"""routes:
  capped:
    kind: user-personalization
    solutionVersionArn: {ARN}
    destination: {{type: dynamodb, maxWritesPerSecond: 400}}
  narrow:
    kind: user-personalization
    solutionVersionArn: {ARN}
    maxExportWorkers: 2
    destination: {{type: dynamodb, maxWritesPerSecond: 400}}
  wide:
    kind: user-personalization
    solutionVersionArn: {ARN}
    maxExportWorkers: 50
    destination: {{type: dynamodb, maxWritesPerSecond: 400}}
  open:
    kind: user-personalization
    solutionVersionArn: {ARN}
    destination: {{type: dynamodb}}
"""


@pytest.mark.parametrize(
    ("route", "ceiling", "start"),
    [
        ("capped", 100.0, 100.0),
        ("narrow", 200.0, 200.0),  # at most 2 of the route's chunks run at once: each takes half
        ("wide", 100.0, 100.0),  # the stack's 4 workers bound it anyway
        ("open", float("inf"), INITIAL_WRITES_PER_SECOND),
    ],
)
def test_each_worker_writes_at_most_its_share_of_the_routes_budget(
    tmp_path, route: str, ceiling: float, start: float
) -> None:
    # Given routes with a budget of 400 writes/s and a stack of 4 workers
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(ROUTES)
    settings = ExportWorkerSettings(
        jobs_table_name="jobs",
        event_bus_name="bus",
        routes_file=str(routes_file),
        recommendations_table_name="recs",
        chunks_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/chunks.fifo",
        chunk_max_receives=5,
        export_worker_concurrency=4,
        export_writer_threads=2,
    )
    exporter = build_chunk_exporter(settings)
    # When a worker opens a sink for the route
    chosen = parse_routes(ROUTES, {}).get(route)
    destination = exporter.destination_for(chosen)
    assert isinstance(destination, DynamoDBRecords)
    sink = destination.sink_for(chosen)
    try:
        # Then its rate never exceeds its share of the budget
        assert isinstance(sink, ShardedRecordSink)
        assert (sink.rate.maximum, sink.rate.rate) == (ceiling, start)
    finally:
        sink.close()
