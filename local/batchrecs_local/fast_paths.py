"""Shorter paths for what the local cloud does most, each answering exactly as the code it stands in for.

A local run is CPU-bound: every call goes through botocore and moto's server, under one interpreter lock
with the functions, so their CPU per call is the local cloud's speed. Each path here was found by
profiling ``batchrecs demo`` and ``local run`` (py-spy, cProfile); ``tests/unit/test_fast_paths.py``
checks that each answers exactly as the code it stands in for, and each leaves to that code whatever it
is not sure of. They are taken in the local cloud's process only (``install``): the functions' code on
AWS is the same code, without them.

- moto makes a new loader for every service model it reads (on the first call of each service), and
  each new loader lists botocore's data folder again: a ``stat`` per service and version, 26 ms per model
  (a quarter of the local cloud's start). One loader reads them all, its files parsed by orjson.
- botocore's loader lists its data folder (an ``isdir``, a ``listdir`` and an ``isfile`` or two per
  service) again for each kind of file it loads: service models, endpoint rules, paginators, each for
  the clients and again for moto (12-25 ms a listing). Each folder is listed once (``ListedOnce``).
- moto's server lists its package folder (an ``isdir`` per service) to route every request. The folder
  does not change while it runs: it is listed once (a tenth of the demo's CPU).
- moto writes every response by walking the output shape of the botocore model member by member: for an
  item's attribute value it looks up each of the ten kinds (``S``, ``N``, ``B``, ...) under two spellings
  and builds a context object per lookup. For the items of a Query or Scan, that walk was a third of the
  demo's CPU (2.1 of 6.5 CPU-seconds). An attribute value in moto's answer is already the wire's
  ``{kind: value}`` form (moto's ``dynamo_to_dict``) except for binary values, which are raw bytes, so
  attribute values (and maps and lists of them) are written directly.
- EventBridge gives a target without an input transformer the event through moto's default template: it
  parses nine JSONPath expressions per event and target (2.6 ms), after importing a parser generator
  (0.12 s of CPU, once). The default template's result is the event's own fields: they are copied.
- moto turns on Flask's debug mode in the app of each service. In it, Flask makes a new class for every
  request with a body (its "enctype" hint, 6% of a local run: the classes also fill the ABC caches
  that every ``isinstance`` check then searches) and rereads the template file of every XML response.
  ``backend_app`` is moto's app without it (an unhandled error is then Flask's plain 500).
- ``http.client`` reads the headers of every response (and ``http.server`` of every request) with the
  e-mail package's feed parser: 14% of a call's CPU. Header lines of the plain ``Name: value`` form
  are split directly; anything else still goes to the e-mail parser.
"""

from __future__ import annotations

import base64
import email.parser
import functools
import http.client
import inspect
import json
import math
import os
import re
from collections.abc import Callable
from typing import Any

import botocore.loaders
import moto.backends
import orjson
from moto.core import loaders as moto_loaders
from moto.core import serialize as moto_serialize
from moto.core import utils as moto_utils
from moto.events import models as events_models
from moto.events.utils import EventTemplateParser
from moto.moto_server.werkzeug_app import create_backend_app


class _Unusual(Exception):
    """A value this module does not know how moto would answer: left to moto's own code."""


def install() -> None:
    """Take the short paths in this process (once; later calls change nothing)."""
    if not hasattr(moto.backends.list_of_moto_modules, "cache_info"):  # not listed once already
        listed = tuple(moto.backends.list_of_moto_modules())
        moto.backends.list_of_moto_modules = functools.lru_cache(maxsize=1)(lambda: listed)
    if moto_utils.create_loader is moto_loaders.create_loader:  # one loader of moto's service models
        models = MotoModels(extra_search_paths=[moto_loaders.moto_root], file_loader=OrjsonDataFiles())
        moto_utils.create_loader = lambda: models
    moto_serialize.SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = DynamoDBSerializer
    if events_models.EventTemplateParser is EventTemplateParser:
        events_models.EventTemplateParser = TargetInput  # type: ignore[misc]
    reads = getattr(http.client, "_read_headers", None)  # what parse_headers reads the lines with
    if reads is not None and list(inspect.signature(reads).parameters) == ["fp"]:  # as in 3.11-3.13
        http.client.parse_headers = parse_headers  # type: ignore[assignment]


class OrjsonDataFiles(botocore.loaders.JSONFileLoader):
    """botocore's data files (service models, endpoints) parsed by orjson: about 3x faster than
    ``json.loads`` with an ``OrderedDict`` hook, and the dicts keep their order all the same."""

    def _load_file(self, full_path: str, open_method: Any) -> Any:
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as file:
            return orjson.loads(file.read())


class ListedOnce(botocore.loaders.Loader):
    """botocore's ``Loader``, answering ``list_available_services`` from one listing of each folder it
    searches: the services whose version folders hold the kind of file asked for, as botocore's own
    listing finds them (its file loader's ``exists``: a file of that name with one of its extensions)."""

    @botocore.loaders.instance_cache
    def list_available_services(self, type_name: str) -> list[str]:
        if type(self.file_loader).exists is not botocore.loaders.JSONFileLoader.exists:
            return list(super().list_available_services(type_name))  # files it finds some other way
        names = {type_name + extension for extension in botocore.loaders._JSON_OPEN_METHODS}
        return sorted(
            {
                service
                for path in self._potential_locations()
                for service, versions in _listing(path).items()
                if any(names & files for files in versions)
            }
        )


class MotoModels(ListedOnce, moto_loaders.Loader):
    """moto's loader of service models (botocore's, with moto's own additions), listing once."""


@functools.cache
def _listing(path: str) -> dict[str, list[frozenset[str]]]:
    """The services in a search path (its folders), each with the files of each of its version folders."""
    services: dict[str, list[frozenset[str]]] = {}
    with os.scandir(path) as entries:
        for service in entries:
            if service.is_dir():
                with os.scandir(service.path) as versions:
                    services[service.name] = [_files(version) for version in versions]
    return services


def _files(folder: os.DirEntry[str]) -> frozenset[str]:
    if not folder.is_dir():
        return frozenset()
    with os.scandir(folder.path) as entries:
        return frozenset(entry.name for entry in entries if entry.is_file())


def backend_app(service: Any) -> Any:
    """moto's Flask app of ``service`` (``DomainDispatcherApplication`` makes one per service), out of
    debug mode."""
    app = create_backend_app(service)
    app.debug = False
    return app


# --- DynamoDB: attribute values ---------------------------------------------------------------------------


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes):
        raise _Unusual
    return base64.b64encode(value).decode("ascii")


def _string(value: Any) -> str:
    if type(value) is not str:  # moto writes str(value) of a number or an enum: let it
        raise _Unusual
    return value


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Unusual
    return value


def _attribute(value: Any) -> dict[str, Any]:
    """One AttributeValue as moto writes it: its members that are present and not None."""
    if type(value) is not dict:
        raise _Unusual
    written = {}
    for kind, member in value.items():
        if member is None:
            continue
        writer = _KINDS.get(kind)
        if writer is None:  # not a member of the shape: moto leaves it out
            continue
        written[kind] = writer(member)
    return written


def _attributes(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Unusual
    return {name: _attribute(each) for name, each in value.items()}


def _attribute_list(value: Any) -> list[dict[str, Any]]:
    if type(value) is not list:
        raise _Unusual
    return [_attribute(each) for each in value]


_KINDS: dict[str, Callable[[Any], Any]] = {  # the members of the AttributeValue shape
    "S": _string,
    "N": _string,
    "B": _blob,
    "SS": lambda each: [_string(one) for one in each],
    "NS": lambda each: [_string(one) for one in each],
    "BS": lambda each: [_blob(one) for one in each],
    "M": _attributes,
    "L": _attribute_list,
    "NULL": _bool,
    "BOOL": _bool,
}


def _writer(shape: Any) -> Callable[[Any], Any] | None:
    """How to write a value of ``shape`` directly, or None when moto's walk should."""
    if shape.name == "AttributeValue":
        return _attribute
    if shape.type_name == "map" and shape.value.name == "AttributeValue":
        return _attributes
    if shape.type_name == "list" and shape.member.name == "AttributeValue":
        return _attribute_list
    return None


class DynamoDBSerializer(moto_serialize.JSONSerializer):
    """moto's JSON serializer, writing attribute values directly."""

    def _serialize(self, serialized: Any, value: Any, shape: Any, key: str) -> None:
        writer = _writer(shape)
        if writer is not None and key and value is not None:
            try:
                serialized[self.get_serialized_name(shape, key)] = writer(value)
                return
            except _Unusual:
                pass
        super()._serialize(serialized, value, shape, key)


# --- EventBridge: a target's input --------------------------------------------------------------------------

# moto puts these fields of the event into its default template between quotes, and then parses the text as
# JSON: a plain string comes out as it went in. A "<" could be taken for another field's placeholder.
_QUOTED_FIELDS = ("id", "detail-type", "source", "region")
_PLAIN = re.compile(r'[^"\\<\x00-\x1f]+')


def _default_input(event: dict[str, Any]) -> dict[str, Any]:
    """What moto's default input template makes of ``event`` (the Target without an InputTransformer)."""
    quoted = {field: event.get(field) for field in _QUOTED_FIELDS}
    if not all(type(value) is str and _PLAIN.fullmatch(value) for value in quoted.values()):
        raise _Unusual
    time, resources, detail = event.get("time"), event.get("resources"), event.get("detail")
    if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time):
        raise _Unusual
    if type(resources) is not list or not all(type(each) is str for each in resources):
        raise _Unusual
    if type(detail) is not dict:
        raise _Unusual
    written = json.dumps([resources, detail])
    if "<" in written:
        raise _Unusual
    resources, detail = json.loads(written)  # as moto's round trip through the template's text
    return {
        "id": quoted["id"],
        "time": time,
        "version": "0",
        "detail-type": quoted["detail-type"],
        "source": quoted["source"],
        "region": quoted["region"],
        "resources": resources,
        "detail": detail,
    }


class TargetInput(EventTemplateParser):
    """moto's template parser, copying the event's fields for the default template."""

    @staticmethod
    def parse(input_template: str, input_paths_map: dict[str, Any], event: Any) -> dict[str, Any]:
        if not input_template and not input_paths_map:
            try:
                return _default_input(event)
            except _Unusual:
                pass
        return EventTemplateParser.parse(input_template, input_paths_map, event)


# --- HTTP: headers ------------------------------------------------------------------------------------------

# a header line the e-mail parser reads as "name: value" and nothing else: a name of printable characters
# without spaces or colons (its ``headerRE``), not the "From " of a mailbox, one line (no continuation)
_PLAIN_HEADER = re.compile(r"(?!From )[\x21-\x39\x3b-\x7e]+:[^\r\n]*")


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """``http.client.parse_headers``: the same message, from the same lines, without the e-mail parser
    when every line is a plain header."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # its reading (and its limits)
    headers = [line.decode("iso-8859-1").removesuffix("\n").removesuffix("\r") for line in lines]
    if headers and headers[-1] == "":  # the blank line that ends them (or the end of the stream)
        headers.pop()
    if not all(_PLAIN_HEADER.fullmatch(header) for header in headers):
        return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
    message = _class()
    for header in headers:
        name, value = header.split(":", 1)
        message.set_raw(name, value.lstrip(" \t"))  # as the compat32 policy's header_source_parse
    message.set_payload("")  # the e-mail parser's empty body
    return message
