"""The local cloud's DynamoDB answers: written directly, they are the JSON moto's own serializer writes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchrecs_local.dynamodb_wire import DynamoDBSerializer
from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model

_MODEL = get_service_model("dynamodb")  # moto's shapes, as its DynamoDB answers use

# every kind of attribute value, nested, as moto's dynamo_to_dict leaves an item (binary values as bytes)
_ITEM: dict[str, Any] = {
    "pk": {"S": "user-1"},
    "empty": {"S": ""},
    "score": {"N": "0.5"},
    "raw": {"B": b"\x00\xffbytes"},
    "tags": {"SS": ["a", "b"]},
    "ranks": {"NS": ["1", "2"]},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "gone": {"NULL": True},
    "ok": {"BOOL": False},
    "items": {
        "L": [
            {"M": {"itemId": {"S": "i1"}, "score": {"N": "0.9"}, "meta": {"M": {}}}},
            {"L": []},
            {"B": b"nested"},
        ]
    },
}
_KEY = {"pk": {"S": "user-1"}}
_RESULTS = {
    "GetItem": {"Item": _ITEM},
    "Query": {"Count": 2, "ScannedCount": 3, "Items": [_ITEM, _KEY], "LastEvaluatedKey": _KEY},
    "Scan": {"Count": 0, "ScannedCount": 0, "Items": []},
    "UpdateItem": {"Attributes": _ITEM, "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}},
    "BatchGetItem": {"Responses": {"t": [_ITEM]}, "UnprocessedKeys": {"t": {"Keys": [_KEY]}}},
    "BatchWriteItem": {
        "UnprocessedItems": {"t": [{"PutRequest": {"Item": _ITEM}}, {"DeleteRequest": {"Key": _KEY}}]}
    },
    # values moto writes with str(): the direct writer leaves them to moto
    "PutItem": {"Attributes": {"count": {"N": 5}, "name": {"S": "x"}}},
}


def _written(serializer: type[JSONSerializer], operation: str, result: dict[str, Any]) -> Any:
    writer = serializer(  # as moto's ActionResult.execute_result makes it
        operation_model=_MODEL.operation_model(operation),
        pretty_print=False,
        value_picker=XFormedAttributePicker(response_transformers=None),
    )
    response = writer.serialize(result)
    return response["status_code"], response["headers"], json.loads(response["body"])


@pytest.mark.parametrize("operation", sorted(_RESULTS))
def test_direct_writer_writes_what_moto_writes(operation: str) -> None:
    result = _RESULTS[operation]
    assert _written(DynamoDBSerializer, operation, result) == _written(JSONSerializer, operation, result)


def test_binary_values_are_base64_on_the_wire() -> None:
    _, _, body = _written(DynamoDBSerializer, "GetItem", {"Item": {"raw": {"B": b"\x00\xff"}}})
    assert body == {"Item": {"raw": {"B": "AP8="}}}
