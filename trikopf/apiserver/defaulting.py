"""Defaults from a CRD's structural schema, applied to custom resources as they are written."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_defaults"]


def apply_defaults(obj: dict[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fill absent fields that have a ``default`` in the schema; returns ``obj`` (changed in place).

    As on a real server: a default applies where the field is missing and its parent
    object exists (a parent that is itself defaulted, e.g. to ``{}``, gets its children's
    defaults too); array items are defaulted by the ``items`` schema; ``metadata`` is
    left alone.
    """
    if not schema:
        return obj
    _default_object(obj, schema, top=True)
    return obj


def _default_object(obj: dict[str, Any], schema: Mapping[str, Any], *, top: bool = False) -> None:
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            if not isinstance(sub, Mapping) or (top and name in ("metadata", "apiVersion", "kind")):
                continue
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                _default_value(obj[name], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        known = set(properties or ())
        for name, value in obj.items():
            if name not in known:
                _default_value(value, extra)


def _default_value(value: Any, schema: Mapping[str, Any]) -> None:
    if isinstance(value, dict):
        _default_object(value, schema)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for item in value:
                _default_value(item, items)
