"""The local cloud's shorter paths (fast_paths.py) answer exactly as the code they stand in for does."""

from __future__ import annotations

import io
import json
from email.parser import Parser
from http.client import HTTPMessage
from typing import Any

import botocore.loaders
import pytest
from batchrecs_local import fast_paths
from batchrecs_local.fast_paths import DynamoDBSerializer, TargetInput, backend_app, parse_headers
from moto.core import loaders as moto_loaders
from moto.core import utils as moto_utils
from moto.core.serialize import JSONSerializer, XFormedAttributePicker
from moto.core.utils import get_service_model
from moto.events.utils import EventTemplateParser
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.test import Client

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


_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "5c1a9e0e-7d0e-4f43-9d55-0d6a1e0e1b2f",
    "detail-type": "Batch Job State Change",
    "source": "batchrecs",
    "account": "123456789012",
    "time": 1796524689.08,  # moto keeps the time as seconds until it sends the event
    "region": "us-east-1",
    "resources": ["arn:aws:personalize:us-east-1:123456789012:batch-inference-job/home-users-1"],
    "detail": {"status": "ACTIVE", "counts": [1, 2.5, None, True], "nested": {"é": "ü", "empty": {}}},
    "ingestion-time": 1796524689.1,
}
_EVENTS = {
    "an event of the pipeline": _EVENT,
    "no resources, empty detail, whole seconds": {
        **_EVENT,
        "resources": [],
        "detail": {},
        "time": 1796524689,
    },
    # left to moto's template: a quote or a "<" in a field, an empty field, a detail that is not an object
    "a quote in the source": {**_EVENT, "source": 'say "hi"'},
    "a placeholder in the detail": {**_EVENT, "detail": {"text": "<source>"}},
    "an empty detail-type": {**_EVENT, "detail-type": ""},
    "a list as detail": {**_EVENT, "detail": [{"a": 1}]},
}


@pytest.mark.parametrize("case", sorted(_EVENTS))
def test_a_targets_default_input_is_what_moto_makes_of_the_event(case: str) -> None:
    event = _EVENTS[case]
    try:
        expected: Any = EventTemplateParser.parse(input_template=None, input_paths_map={}, event=event)
    except ValueError as error:  # moto's template cannot hold it: neither can ours
        expected = type(error)
    try:
        made: Any = TargetInput.parse(input_template=None, input_paths_map={}, event=event)
    except ValueError as error:
        made = type(error)
    assert made == expected


def test_a_targets_input_transformer_is_left_to_moto() -> None:
    transformer = {"input_template": '{"s": "<s>"}', "input_paths_map": {"s": "$.detail.status"}}
    assert TargetInput.parse(event=_EVENT, **transformer) == {"s": "ACTIVE"}  # type: ignore[arg-type]


_HEADER_BLOCKS = {
    "a response of moto's": b"Server: Werkzeug/3.1.9 Python/3.11.7\r\nDate: Sun, 06 Dec 2026 03:00:00 GMT\r\n"
    b"Content-Type: application/x-amz-json-1.0\r\nContent-Length: 2\r\nx-amzn-RequestId: abc\r\n"
    b"x-amz-crc32: 2745614147\r\nConnection: close\r\n\r\n",
    "a request of botocore's": b"Host: 127.0.0.1:5000\r\nAccept-Encoding: identity\r\n"
    b"X-Amz-Target: DynamoDB_20120810.GetItem\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20261206/"
    b"us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00ff\r\nContent-Length: 0\r\n\r\n",
    "repeated names, an empty value, tabs and Latin-1": b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\n"
    b"X-Tabs:\t\t value \r\nX-Latin: caf\xe9\r\n\n",
    "no blank line (the stream ended)": b"A: 1\r\nB: 2\r\n",
    "nothing": b"\r\n",
    # left to the e-mail parser: a folded header, a line without a colon, a space before the colon
    "a folded header": b"X-Long: one\r\n two\r\nB: 3\r\n\r\n",
    "a line without a colon": b"A: 1\r\nnot a header\r\nB: 2\r\n\r\n",
    "a space before the colon": b"A : 1\r\n\r\n",
    "a mailbox's From line": b"From someone\r\nA: 1\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(_HEADER_BLOCKS))
def test_headers_are_the_message_the_email_parser_makes(case: str) -> None:

    block = _HEADER_BLOCKS[case]
    after = b"" if case == "no blank line (the stream ended)" else b"the body, not read"
    made = parse_headers(io.BytesIO(block + after))
    expected = Parser(_class=HTTPMessage).parsestr(block.decode("iso-8859-1"))  # http.client's own way
    assert isinstance(made, HTTPMessage)
    assert made.items() == expected.items()
    assert made.get_payload() == expected.get_payload()
    assert [type(defect) for defect in made.defects] == [type(defect) for defect in expected.defects]


def test_motos_apps_run_out_of_debug_mode_and_answer_a_request_with_a_body() -> None:

    app = backend_app("sqs")
    assert not app.debug and not app.jinja_env.auto_reload
    classes = len(ImmutableMultiDict.__subclasses__())  # Flask's debug mode subclasses it per request
    answered = Client(app).post(
        "/",
        data={"Action": "ListQueues", "Version": "2012-11-05"},
        headers={"Host": "sqs.us-east-1.amazonaws.com"},
    )
    assert answered.status_code == 200 and b"ListQueuesResponse" in answered.data
    assert len(ImmutableMultiDict.__subclasses__()) == classes


def test_moto_reads_its_service_models_with_one_loader_as_its_own_loaders_would() -> None:
    fast_paths.install()
    assert moto_utils.create_loader() is moto_utils.create_loader()
    for service in ("sqs", "dynamodb"):  # moto adds its own members to botocore's SQS model
        shared = moto_utils.create_loader().load_service_model(service, "service-2")
        assert shared == moto_loaders.create_loader().load_service_model(service, "service-2")
    sqs = moto_utils.create_loader().load_service_model("sqs", "service-2")
    assert sqs["operations"]["CreateQueue"]["output"]["resultWrapper"] == "CreateQueueResult"


@pytest.mark.parametrize(
    "kind", ["service-2", "paginators-1", "endpoint-rule-set-1", "waiters-2", "nothing-1"]
)
def test_services_listed_once_are_the_services_botocore_lists(kind: str) -> None:
    clients = fast_paths.ListedOnce(file_loader=fast_paths.OrjsonDataFiles())
    motos = fast_paths.MotoModels(extra_search_paths=[moto_loaders.moto_root])
    assert clients.list_available_services(kind) == botocore.loaders.Loader().list_available_services(kind)
    assert motos.list_available_services(kind) == moto_loaders.create_loader().list_available_services(kind)
    if kind == "service-2":
        assert {"dynamodb", "s3", "sesv2"} <= set(clients.list_available_services(kind))
    if kind == "nothing-1":
        assert clients.list_available_services(kind) == []
