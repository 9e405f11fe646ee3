"""What the local endpoint tells its waiters: which tables a write named, and writes counted per table."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from batchrecs_local.endpoint import Happenings, _request_json, _written_tables


def _environ(body: bytes) -> dict[str, Any]:
    return {"CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}


def test_a_write_names_its_tables_and_its_body_is_left_for_moto() -> None:
    body = json.dumps(
        {
            "RequestItems": {"records": [], "arn:aws:dynamodb:us-east-1:123456789012:table/jobs": []},
            "TransactItems": [{"Put": {"TableName": "users"}}, {"ConditionCheck": {"TableName": "jobs"}}],
            "TableName": "ledger",
        }
    ).encode()
    environ = _environ(body)
    assert _written_tables(_request_json(environ)) == ["jobs", "ledger", "records", "users"]
    assert environ["wsgi.input"].read() == body  # moto reads the same body after it
    assert _written_tables(_request_json(_environ(b"not json"))) == []


def test_waiters_of_a_table_see_its_writes_and_writes_to_no_table_in_particular() -> None:
    writes = Happenings()
    jobs, everything = writes.seen("jobs"), writes.seen()
    writes.happened("records")
    assert writes.seen("jobs") == jobs  # another table's write: the jobs' waiters sleep on
    assert writes.seen() == everything + 1
    writes.happened("jobs", "records")
    assert writes.seen("jobs") == jobs + 1
    writes.happened()  # a write whose tables are not known counts for every table
    assert writes.seen("jobs") == jobs + 2


def test_a_waiter_wakes_on_its_tables_write_and_not_on_anothers() -> None:
    writes = Happenings()
    seen = writes.seen("jobs")
    woke = threading.Event()

    def wait() -> None:
        writes.wait_after(seen, 5.0, "jobs")
        woke.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    writes.happened("records")
    assert not woke.wait(0.2)
    writes.happened("jobs")
    assert woke.wait(5.0)
    waiter.join()
