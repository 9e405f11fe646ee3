"""moto's DynamoDB answers with their attribute values written straight to the wire.

moto serialises every response by walking the output shape of the botocore model member by member: for
an item's attribute value it looks up each of the ten kinds (``S``, ``N``, ``B``, ...) under two spellings
and builds a context object per lookup. For the items of a Query or Scan, that walk was a third of the
demo's CPU (py-spy: 2.1 of 6.5 CPU-seconds). An attribute value in moto's answer is already the wire's
``{kind: value}`` form (moto's ``dynamo_to_dict``) except for binary values, which are raw bytes, so this
serializer writes attribute values (and maps and lists of them) directly and leaves everything else to
moto. ``tests/unit/test_dynamodb_wire.py`` checks that both write the same JSON.
"""

from __future__ import annotations

import base64
from typing import Any

from moto.core import serialize as moto_serialize

_ATTRIBUTE_VALUE = "AttributeValue"
_KINDS = ("S", "N", "B", "SS", "NS", "BS", "M", "L", "NULL", "BOOL")  # the shape's members, in its order


class _Unusual(Exception):
    """A value this writer does not know how moto would write (left to moto's walk)."""


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes):
        raise _Unusual
    return base64.b64encode(value).decode("ascii")


def _string(value: Any) -> Any:
    if not isinstance(value, str):  # moto writes str(value) of a number or an enum: let it
        raise _Unusual
    return value


def _attribute(value: Any) -> dict[str, Any]:
    """One AttributeValue as moto's walk writes it: its members that are present and not None."""
    if not isinstance(value, dict):
        raise _Unusual
    written: dict[str, Any] = {}
    for kind in _KINDS:
        member = value.get(kind)
        if member is None:
            continue
        if kind in ("S", "N"):
            written[kind] = _string(member)
        elif kind == "B":
            written[kind] = _blob(member)
        elif kind in ("SS", "NS"):
            written[kind] = [_string(each) for each in member]
        elif kind == "BS":
            written[kind] = [_blob(each) for each in member]
        elif kind == "M":
            written[kind] = _attributes(member)
        elif kind == "L":
            written[kind] = [_attribute(each) for each in member]
        elif isinstance(member, bool):  # NULL, BOOL
            written[kind] = member
        else:
            raise _Unusual
    return written


def _attributes(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Unusual
    return {name: _attribute(each) for name, each in value.items()}


def _writer(shape: Any) -> Any:
    """How to write a value of ``shape`` directly, or None when moto's walk should."""
    if shape.name == _ATTRIBUTE_VALUE:
        return _attribute
    if shape.type_name == "map" and shape.value.name == _ATTRIBUTE_VALUE:
        return _attributes
    if shape.type_name == "list" and shape.member.name == _ATTRIBUTE_VALUE:
        return lambda value: [_attribute(each) for each in value]
    return None


class DynamoDBSerializer(moto_serialize.JSONSerializer):
    """moto's JSON serializer, writing attribute values directly (see the module's docstring)."""

    def _serialize(self, serialized: Any, value: Any, shape: Any, key: str) -> None:
        writer = _writer(shape)
        if writer is not None and key and value is not None:
            try:
                serialized[self.get_serialized_name(shape, key)] = writer(value)
                return
            except _Unusual:
                pass
        super()._serialize(serialized, value, shape, key)


def serialize_attribute_values_directly() -> None:
    """Make moto's DynamoDB answer through ``DynamoDBSerializer`` (in this process)."""
    moto_serialize.SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = DynamoDBSerializer
