"""Server-side printing: ``meta.k8s.io`` Tables for ``kubectl get``.

``kubectl get`` asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ...``. The
server answers with a Table whose columns are Name and Age by default, the CRD's
``additionalPrinterColumns`` for custom resources (JSONPath evaluated as the real server does),
or the familiar columns of the built-in kinds (pods, deployments, configmaps, namespaces,
events...). Each row carries the object as PartialObjectMetadata (the default), in full
(``includeObject=Object``) or not at all (``includeObject=None``).

Everything here is pure and synchronous: no I/O, no tasks.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from trikopf.apiserver.jsonpath import JsonPathError, evaluate_jsonpath

__all__ = [
    "JsonPathError",
    "evaluate_jsonpath",
    "human_duration",
    "render_table",
    "table_version",
    "wants_table",
]

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. It is required when creating "
    "resources, although some resources may allow a client to request the generation of an "
    "appropriate name automatically.",
    "priority": 0,
}
_AGE_DESCRIPTION = "The time since the object was created."


def table_version(accept_header: str | None) -> str | None:
    """The Table apiVersion the ``Accept`` header asks for (``meta.k8s.io/v1`` or ``v1beta1``).

    ``None`` when the client does not ask for a Table.
    """
    if not accept_header:
        return None
    for media_range in accept_header.split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        if media_type not in ("application/json", "*/*", "application/*"):
            continue
        values = {}
        for param in params:
            name, _, value = param.partition("=")
            values[name.strip().lower()] = value.strip()
        if values.get("as") != "Table" or values.get("g") != "meta.k8s.io":
            continue
        if values.get("v") in ("v1", "v1beta1"):
            return f"meta.k8s.io/{values['v']}"
    return None


def wants_table(accept_header: str | None) -> bool:
    """Whether the ``Accept`` header asks for a ``meta.k8s.io`` Table (v1 or v1beta1)."""
    return table_version(accept_header) is not None


def human_duration(seconds: float) -> str:
    """Render an age like kubectl does: ``45s``, ``3m20s``, ``5h``, ``12d``, ``2y30d``."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _age(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    created = _parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    if created is None:
        return "<unknown>"
    return human_duration((now - created).total_seconds())


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _typed_cell(column_type: str, value: Any, now: datetime.datetime) -> Any:
    if column_type == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return int(value)
    if column_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type == "date":
        # The real server renders date columns of custom resources as ages, like kubectl.
        if not isinstance(value, str):
            return None
        when = _parse_time(value)
        return human_duration((now - when).total_seconds()) if when else "<invalid>"
    return _as_text(value)


# --- columns ---------------------------------------------------------------------------------

_Cell = Callable[[Mapping[str, Any], datetime.datetime], Any]


def _column(
    name: str, type_: str, cell: _Cell, *, priority: int = 0, fmt: str = "", description: str = ""
) -> tuple[dict[str, Any], _Cell]:
    definition = {
        "name": name,
        "type": type_,
        "format": fmt,
        "description": description or name,
        "priority": priority,
    }
    return definition, cell


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _name(obj: Mapping[str, Any], now: datetime.datetime) -> Any:
    return _get(obj, "metadata", "name") or ""


_NAME = (_NAME_COLUMN, _name)
_AGE = _column("Age", "string", _age, description=_AGE_DESCRIPTION)


def _pod_ready(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    containers = _get(obj, "spec", "containers") or []
    statuses = _get(obj, "status", "containerStatuses") or []
    ready = sum(1 for s in statuses if isinstance(s, Mapping) and s.get("ready"))
    return f"{ready}/{len(containers)}"


def _pod_status(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return str(_get(obj, "status", "reason") or _get(obj, "status", "phase") or "Pending")


def _pod_restarts(obj: Mapping[str, Any], now: datetime.datetime) -> int:
    statuses = _get(obj, "status", "containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses if isinstance(s, Mapping))


def _or_none(*path: str) -> _Cell:
    def cell(obj: Mapping[str, Any], now: datetime.datetime) -> Any:
        value = _get(obj, *path)
        return "<none>" if value in (None, "") else _as_text(value)

    return cell


def _int_at(*path: str) -> _Cell:
    def cell(obj: Mapping[str, Any], now: datetime.datetime) -> Any:
        value = _get(obj, *path)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    return cell


def _count(*paths: tuple[str, ...]) -> _Cell:
    def cell(obj: Mapping[str, Any], now: datetime.datetime) -> int:
        return sum(len(_get(obj, *path) or ()) for path in paths)

    return cell


def _deployment_ready(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    ready = _get(obj, "status", "readyReplicas") or 0
    wanted = _get(obj, "spec", "replicas")
    return f"{ready}/{1 if wanted is None else wanted}"


def _containers(field: str) -> _Cell:
    def cell(obj: Mapping[str, Any], now: datetime.datetime) -> str:
        containers = _get(obj, "spec", "template", "spec", "containers") or []
        return ",".join(str(c.get(field, "")) for c in containers if isinstance(c, Mapping))

    return cell


def _selector(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    labels = _get(obj, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _namespace_status(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    if _get(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return str(_get(obj, "status", "phase") or "Active")


def _event_last_seen(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    for path in (
        ("series", "lastObservedTime"),
        ("lastTimestamp",),
        ("deprecatedLastTimestamp",),
        ("eventTime",),
        ("metadata", "creationTimestamp"),
    ):
        when = _parse_time(_get(obj, *path))
        if when is not None:
            return human_duration((now - when).total_seconds())
    return "<unknown>"


def _event_object(field: str) -> _Cell:
    def cell(obj: Mapping[str, Any], now: datetime.datetime) -> str:
        kind = str(_get(obj, field, "kind") or "").lower()
        name = _get(obj, field, "name") or ""
        return f"{kind}/{name}" if kind else str(name)

    return cell


def _event_message(field: str) -> _Cell:
    def cell(obj: Mapping[str, Any], now: datetime.datetime) -> str:
        return str(_get(obj, field) or "").strip()

    return cell


def _service_ports(obj: Mapping[str, Any], now: datetime.datetime) -> str:
    ports = _get(obj, "spec", "ports") or []
    parts = []
    for port in ports:
        if not isinstance(port, Mapping):
            continue
        text = str(port.get("port", ""))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        parts.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(parts) or "<none>"


def _created_at(obj: Mapping[str, Any], now: datetime.datetime) -> Any:
    return _get(obj, "metadata", "creationTimestamp")


_EVENT_COLUMNS = [
    _column("Last Seen", "string", _event_last_seen),
    _column("Type", "string", _or_none("type")),
    _column("Reason", "string", _or_none("reason")),
    _column("Object", "string", _event_object("involvedObject")),
    _column("Message", "string", _event_message("message")),
    _column("Source", "string", _or_none("source", "component"), priority=1),
    _column("Count", "integer", _int_at("count"), priority=1),
    _column("Name", "string", _name, priority=1, fmt="name"),
]
_WEBHOOKS = [_NAME, _column("Webhooks", "integer", _count(("webhooks",))), _AGE]

_BUILTIN_COLUMNS: dict[tuple[str, str], list[tuple[dict[str, Any], _Cell]]] = {
    ("", "Pod"): [
        _NAME,
        _column("Ready", "string", _pod_ready),
        _column("Status", "string", _pod_status),
        _column("Restarts", "string", lambda o, n: str(_pod_restarts(o, n))),
        _AGE,
        _column("IP", "string", _or_none("status", "podIP"), priority=1),
        _column("Node", "string", _or_none("spec", "nodeName"), priority=1),
    ],
    ("apps", "Deployment"): [
        _NAME,
        _column("Ready", "string", _deployment_ready),
        _column("Up-to-date", "integer", _int_at("status", "updatedReplicas")),
        _column("Available", "integer", _int_at("status", "availableReplicas")),
        _AGE,
        _column("Containers", "string", _containers("name"), priority=1),
        _column("Images", "string", _containers("image"), priority=1),
        _column("Selector", "string", _selector, priority=1),
    ],
    ("", "ConfigMap"): [
        _NAME,
        _column("Data", "integer", _count(("data",), ("binaryData",))),
        _AGE,
    ],
    ("", "Secret"): [
        _NAME,
        _column("Type", "string", _or_none("type")),
        _column("Data", "integer", _count(("data",))),
        _AGE,
    ],
    ("", "Namespace"): [_NAME, _column("Status", "string", _namespace_status), _AGE],
    ("", "ServiceAccount"): [_NAME, _column("Secrets", "integer", _count(("secrets",))), _AGE],
    ("", "Service"): [
        _NAME,
        _column("Type", "string", _or_none("spec", "type")),
        _column("Cluster-IP", "string", _or_none("spec", "clusterIP")),
        _column("External-IP", "string", _or_none("spec", "externalName")),
        _column("Port(s)", "string", _service_ports),
        _AGE,
        _column(
            "Selector",
            "string",
            lambda o, n: (
                ",".join(f"{k}={v}" for k, v in sorted((_get(o, "spec", "selector") or {}).items()))
                or "<none>"
            ),
            priority=1,
        ),
    ],
    ("", "Event"): _EVENT_COLUMNS,
    ("events.k8s.io", "Event"): [
        _column("Last Seen", "string", _event_last_seen),
        _column("Type", "string", _or_none("type")),
        _column("Reason", "string", _or_none("reason")),
        _column("Object", "string", _event_object("regarding")),
        _column("Message", "string", _event_message("note")),
    ],
    ("coordination.k8s.io", "Lease"): [
        _NAME,
        _column("Holder", "string", lambda o, n: _as_text(_get(o, "spec", "holderIdentity") or "")),
        _AGE,
    ],
    ("apiextensions.k8s.io", "CustomResourceDefinition"): [
        _NAME,
        _column("Created At", "date", _created_at),
    ],
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _WEBHOOKS,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _WEBHOOKS,
}


def _custom_columns(
    printer_columns: Sequence[Mapping[str, Any]],
) -> list[tuple[dict[str, Any], _Cell]]:
    columns: list[tuple[dict[str, Any], _Cell]] = [_NAME]
    for spec in printer_columns:
        column_type = str(spec.get("type") or "string")
        path = str(spec.get("jsonPath") or spec.get("JSONPath") or "")
        try:
            evaluate_jsonpath({}, path)
        except JsonPathError:
            continue  # the real server refuses such CRDs; never fail a list over one

        def cell(
            obj: Mapping[str, Any],
            now: datetime.datetime,
            *,
            _path: str = path,
            _type: str = column_type,
        ) -> Any:
            values = evaluate_jsonpath(obj, _path)
            return _typed_cell(_type, values[0], now) if values else None

        definition = {
            "name": str(spec.get("name") or ""),
            "type": column_type,
            "format": str(spec.get("format") or ""),
            "description": str(spec.get("description") or ""),
            "priority": int(spec.get("priority") or 0),
        }
        columns.append((definition, cell))
    return columns


def _default_columns() -> list[tuple[dict[str, Any], _Cell]]:
    def age(obj: Mapping[str, Any], now: datetime.datetime) -> Any:
        return _typed_cell("date", _created_at(obj, now), now)

    return [_NAME, _column("Age", "date", age, description=_AGE_DESCRIPTION)]


def _row_object(obj: Mapping[str, Any], include_object: str, api_version: str) -> Any:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": obj.get("metadata", {}),
    }


def render_table(
    objects: Sequence[Mapping[str, Any]],
    *,
    kind_is_list: bool,
    printer_columns: Sequence[Mapping[str, Any]] | None,
    resource_version: str,
    continue_: str | None,
    group: str = "",
    kind: str = "",
    include_object: str = "Metadata",
    api_version: str = "meta.k8s.io/v1",
    remaining_item_count: int | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Render objects as a ``meta.k8s.io`` Table.

    ``printer_columns`` are a CRD version's ``additionalPrinterColumns`` (``None`` for a
    built-in kind, whose familiar columns are chosen by ``group`` and ``kind``; kinds without
    their own columns get Name and Age). ``include_object`` is the ``includeObject`` query
    parameter: ``None``, ``Metadata`` (the default) or ``Object``.
    """
    if include_object not in ("None", "Metadata", "Object"):
        raise ValueError(
            f"includeObject: Unsupported value: {include_object!r}: "
            'supported values: "Metadata", "None", "Object"'
        )
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if printer_columns:
        columns = _custom_columns(printer_columns)
    elif printer_columns is None and (group, kind) in _BUILTIN_COLUMNS:
        columns = _BUILTIN_COLUMNS[(group, kind)]
    else:
        columns = _default_columns()
    rows = []
    for obj in objects:
        cells = []
        for _, cell in columns:
            try:
                cells.append(cell(obj, now))
            except (TypeError, ValueError, AttributeError, KeyError):
                cells.append(None)  # a malformed object shows an empty cell, never an error
        row: dict[str, Any] = {"cells": cells}
        row_object = _row_object(obj, include_object, api_version)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if kind_is_list and continue_:
        metadata["continue"] = continue_
    if kind_is_list and remaining_item_count is not None:
        metadata["remainingItemCount"] = remaining_item_count
    return {
        "kind": "Table",
        "apiVersion": api_version,
        "metadata": metadata,
        "columnDefinitions": [dict(definition) for definition, _ in columns],
        "rows": rows,
    }


def tabulate_watch_line(
    line: bytes,
    render: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    headers: bool,
) -> bytes:
    """Turn one watch event line into the same event carrying a one-row Table.

    ``render`` makes the Table of one object (see :func:`render_table`). The real server
    sends column definitions with the first event of a watch only (``headers``), so kubectl
    prints the header line once. BOOKMARK and ERROR events pass unchanged.
    """
    event = json.loads(line)
    obj = event.get("object")
    if event.get("type") in ("BOOKMARK", "ERROR") or not isinstance(obj, dict):
        return line
    table = render(obj)
    if not headers:
        table["columnDefinitions"] = []
    table["metadata"] = {"resourceVersion": str(obj.get("metadata", {}).get("resourceVersion", ""))}
    event["object"] = table
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"
