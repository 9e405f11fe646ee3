"""The bench's cost model (issue #16, part 4): DynamoDB's item size rules, and a million users' cost."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.conftest import ROOT


def _cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_cost", ROOT / "bench" / "cost.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cost"] = module
    spec.loader.exec_module(module)
    return module


def test_item_sizes_follow_dynamodbs_rules() -> None:
    # "DynamoDB item sizes and formats": name + UTF-8 bytes; numbers 1 byte per 2 significant digits + 1;
    # lists 3 bytes + 1 per element
    size = _cost().dynamodb_item_size
    assert size({"pk": {"S": "42"}}) == 2 + 2
    assert size({"pk": {"S": "été"}}) == 2 + 5
    assert size({"n": {"N": "0.0123000"}}) == 1 + 3  # significant digits 123: 2 bytes + 1
    assert size({"n": {"N": "1700000000"}}) == 1 + 2  # 17: 1 byte + 1
    assert size({"items": {"L": [{"S": "a"}, {"S": "bc"}]}}) == 5 + 3 + (1 + 1) + (1 + 2)
    assert size({"items": {"L": []}}) == 5 + 3


def test_a_million_users_at_25_items_cost_within_ten_percent_of_one_write_unit_each() -> None:
    cost = _cost()
    measured = {"submit_lines_per_cpu_s": 900_000, "worker_items_per_cpu_s": 30_000}
    result = cost.cost_per_million(measured, out_bytes_per_user=545)
    at_25 = result["dynamodb_numResults_25"]
    # records of 25 items and scores stay under 1 KB: one write unit each, as the floor
    assert at_25["record_bytes"]["max"] < 1024 and at_25["record_bytes"]["wru_per_record"] == 1.0
    assert at_25["floor_usd"] == 0.625 and 0 < at_25["over_floor"] < 0.10
    # 100 items pass 1 KB: two write units a record, twice the floor
    assert result["dynamodb_numResults_100"]["record_bytes"]["wru_per_record"] == 2.0
