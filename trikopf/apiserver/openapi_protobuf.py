"""Swagger 2.0 documents encoded as gnostic's ``openapi_v2.Document`` protobuf.

kubectl 1.27 (and later ones, for ``apply``) read ``/openapi/v2`` only as
``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``. The encoder is written by
hand for the part of the message schema that the server's documents use (info, paths with
operations and parameters, definitions with schemas and vendor extensions), so that no
protobuf library is needed. Pure; no I/O.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

__all__ = ["encode_v2_protobuf"]


def _varint(number: int) -> bytes:
    if number < 0:
        number += 1 << 64
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, value: Any) -> bytes:
    return _field(number, str(value).encode()) if value not in (None, "") else b""


def _flag(number: int, value: Any) -> bytes:
    return _varint(number << 3) + b"\x01" if value is True else b""


def _integer(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int):
        return b""
    return _varint(number << 3) + _varint(value)


def _double(number: int, value: Any) -> bytes:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return b""
    return _varint(number << 3 | 1) + struct.pack("<d", float(value))


def _pb_any(value: Any) -> bytes:
    return _text(2, json.dumps(value, sort_keys=True))  # Any.yaml: JSON is valid YAML


def _pb_extensions(number: int, mapping: Mapping[str, Any]) -> bytes:
    return b"".join(
        _field(number, _text(1, key) + _field(2, _pb_any(value)))
        for key, value in mapping.items()
        if key.startswith("x-")
    )


def _pb_schema(schema: Mapping[str, Any]) -> bytes:
    out = [
        _text(1, schema.get("$ref")),
        _text(2, schema.get("format")),
        _text(3, schema.get("title")),
        _text(4, schema.get("description")),
    ]
    if "default" in schema:
        out.append(_field(5, _pb_any(schema["default"])))
    out += [
        _double(6, schema.get("multipleOf")),
        _double(7, schema.get("maximum")),
        _flag(8, schema.get("exclusiveMaximum")),
        _double(9, schema.get("minimum")),
        _flag(10, schema.get("exclusiveMinimum")),
        _integer(11, schema.get("maxLength")),
        _integer(12, schema.get("minLength")),
        _text(13, schema.get("pattern")),
        _integer(14, schema.get("maxItems")),
        _integer(15, schema.get("minItems")),
        _flag(16, schema.get("uniqueItems")),
        _integer(17, schema.get("maxProperties")),
        _integer(18, schema.get("minProperties")),
    ]
    out += [_text(19, name) for name in schema.get("required") or ()]
    out += [_field(20, _pb_any(value)) for value in schema.get("enum") or ()]
    additional = schema.get("additionalProperties")
    if isinstance(additional, Mapping):
        out.append(_field(21, _field(1, _pb_schema(additional))))
    elif isinstance(additional, bool):
        out.append(_field(21, _varint(2 << 3) + (b"\x01" if additional else b"\x00")))
    kind = schema.get("type")
    if kind:
        out.append(
            _field(22, b"".join(_text(1, t) for t in ([kind] if isinstance(kind, str) else kind)))
        )
    items = schema.get("items")
    if isinstance(items, Mapping):
        out.append(_field(23, _field(1, _pb_schema(items))))
    out += [
        _field(24, _pb_schema(branch))
        for branch in schema.get("allOf") or ()
        if isinstance(branch, Mapping)
    ]
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        named = b"".join(
            _field(1, _text(1, key) + _field(2, _pb_schema(value)))
            for key, value in properties.items()
        )
        out.append(_field(25, named))
    out.append(_flag(27, schema.get("readOnly")))
    out.append(_pb_extensions(31, schema))
    return b"".join(out)


def _pb_parameter(parameter: Mapping[str, Any]) -> bytes:
    if parameter.get("in") == "body":
        body = (
            _text(1, parameter.get("description"))
            + _text(2, parameter.get("name"))
            + _text(3, "body")
            + _flag(4, parameter.get("required"))
            + _field(5, _pb_schema(parameter.get("schema") or {}))
        )
        return _field(1, _field(1, body))  # ParametersItem.parameter -> Parameter.body_parameter
    if parameter.get("in") == "path":
        sub = (
            _flag(1, True)
            + _text(2, "path")
            + _text(4, parameter.get("name"))
            + _text(5, parameter.get("type", "string"))
        )
        non_body = _field(4, sub)
    else:
        sub = (
            _flag(1, parameter.get("required"))
            + _text(2, parameter.get("in", "query"))
            + _text(3, parameter.get("description"))
            + _text(4, parameter.get("name"))
            + _text(6, parameter.get("type", "string"))
            + _flag(20, parameter.get("uniqueItems"))
        )
        non_body = _field(3, sub)
    return _field(
        1, _field(2, non_body)
    )  # ParametersItem.parameter -> Parameter.non_body_parameter


def _pb_operation(operation: Mapping[str, Any]) -> bytes:
    out = [_text(1, tag) for tag in operation.get("tags") or ()]
    out.append(_text(3, operation.get("description")))
    out.append(_text(5, operation.get("operationId")))
    out += [_text(6, t) for t in operation.get("produces") or ()]
    out += [_text(7, t) for t in operation.get("consumes") or ()]
    out += [_field(8, _pb_parameter(p)) for p in operation.get("parameters") or ()]
    codes = b""
    for code, response in (operation.get("responses") or {}).items():
        body = _text(1, response.get("description", ""))
        if isinstance(response.get("schema"), Mapping):
            body += _field(2, _field(1, _pb_schema(response["schema"])))
        codes += _field(1, _text(1, code) + _field(2, _field(1, body)))
    out.append(_field(9, codes))
    out.append(_pb_extensions(13, operation))
    return b"".join(out)


_PATH_ITEM_FIELDS = {
    "get": 2,
    "put": 3,
    "post": 4,
    "delete": 5,
    "options": 6,
    "head": 7,
    "patch": 8,
}


def encode_v2_protobuf(document: Mapping[str, Any]) -> bytes:
    """Encode a Swagger 2.0 document as gnostic's ``openapi_v2.Document`` protobuf."""
    info = document.get("info") or {}
    out = [
        _text(1, document.get("swagger", "2.0")),
        _field(2, _text(1, info.get("title")) + _text(2, info.get("version"))),
    ]
    path_items = b""
    for path, item in (document.get("paths") or {}).items():
        encoded = b"".join(
            _field(number, _pb_operation(item[verb]))
            for verb, number in _PATH_ITEM_FIELDS.items()
            if verb in item
        )
        path_items += _field(2, _text(1, path) + _field(2, encoded))
    out.append(_field(8, path_items))
    definitions = b"".join(
        _field(1, _text(1, name) + _field(2, _pb_schema(schema)))
        for name, schema in (document.get("definitions") or {}).items()
    )
    out.append(_field(9, definitions))
    return b"".join(out)
