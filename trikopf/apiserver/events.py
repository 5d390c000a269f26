"""core/v1 and events.k8s.io/v1 Events are one stored collection, seen in two shapes."""

from __future__ import annotations

from typing import Any

from trikopf.apiserver.jsonio import dumps, loads

__all__ = ["CORE_EVENTS", "EVENT_TWINS", "NEW_EVENTS", "convert_event"]

CORE_EVENTS = ("", "events")
NEW_EVENTS = ("events.k8s.io", "events")
EVENT_TWINS = {CORE_EVENTS: NEW_EVENTS, NEW_EVENTS: CORE_EVENTS}

# core/v1 field -> events.k8s.io/v1 field, as the real server converts them.
_FIELDS = (
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("reason", "reason"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("action", "action"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)


def convert_event(obj: dict[str, Any], *, to: tuple[str, str]) -> dict[str, Any]:
    """The same Event in the other API group's shape (a new object; nothing is shared)."""
    copied: dict[str, Any] = loads(dumps(obj))
    if to == NEW_EVENTS:
        result: dict[str, Any] = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
        pairs: tuple[tuple[str, str], ...] = _FIELDS
    else:
        result = {"apiVersion": "v1", "kind": "Event"}
        pairs = tuple((new, old) for old, new in _FIELDS)
    result["metadata"] = copied.get("metadata") or {}
    for source, target in pairs:
        if copied.get(source) is not None:
            result[target] = copied[source]
    if to == CORE_EVENTS and "source" not in result and result.get("reportingComponent"):
        result["source"] = {"component": result["reportingComponent"]}
    return result
