"""Field ownership (``metadata.managedFields``) as a Kubernetes API server keeps it.

Every write names a field manager. An apply (``application/apply-patch+yaml``) makes its
manager own exactly the fields of the applied configuration (an ``Apply`` entry); any other
write (create, update, patch) gives its manager the fields it added or changed (an
``Update`` entry) and takes them away from the other managers. Fields are paths in the
``FieldsV1`` encoding: ``f:<name>`` for an object's field, ``k:<json>`` for an item of an
associative list by its keys, ``v:<json>`` for an item of a set, ``i:<n>`` for a position;
``.`` marks a node that is owned itself as well as through its children.

Which lists are associative, sets or atomic comes from the type: the strategic-merge
metadata of the built-in kinds (:mod:`patching`) or a CRD's ``x-kubernetes-list-type`` and
``x-kubernetes-list-map-keys``. Everything here is pure and synchronous: the server calls it
while it handles one write, on the request's own objects, and never on reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from trikopf.apiserver.patching import _List, patch_metadata

__all__ = [
    "EntryError",
    "Manager",
    "Path",
    "changed",
    "decode_entries",
    "diff",
    "encode_entries",
    "field_set",
    "is_atomic_map",
    "path_text",
    "schema_for",
    "top_child",
]

Path = tuple[str, ...]
Schema = Mapping[str, Any]  # an OpenAPI v3 schema, or a part of one

_NODE: Final = object()  # the value of a flattened path that is an owned node, not a leaf
_ANY: Final[Schema] = {}
_STRING_MAP: Final[Schema] = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA: Final[Schema] = {
    "type": "object",
    "properties": {
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": {"type": "array", "x-kubernetes-list-type": "set"},
        "ownerReferences": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["uid"],
        },
    },
}
# Fields the server sets or that identify the object: never owned by anyone.
_STRIPPED_META: Final = frozenset(
    {
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)
# Maps of the built-in kinds (map[string]string and the like) rather than structs.
_BUILTIN_MAPS: Final = frozenset(
    {
        "data",
        "binaryData",
        "stringData",
        "matchLabels",
        "nodeSelector",
        "limits",
        "requests",
        "capacity",
        "allocatable",
    }
)


# ------------------------------------------------------------------ schemas


def _from_patch_metadata(meta: Any) -> Schema:
    if isinstance(meta, _List):
        if meta.primitive_set:
            return {"type": "array", "x-kubernetes-list-type": "set"}
        if meta.merge_key is None:
            return {"type": "array"}
        keys = meta.apply_keys or ((meta.merge_key, None),)
        items = dict(_from_patch_metadata(meta.item or {}))
        defaults = {key: {"default": value} for key, value in keys if value is not None}
        if defaults:
            items["properties"] = {**items["properties"], **defaults}
        return {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": [key for key, _ in keys],
            "items": items,
        }
    properties = {key: _from_patch_metadata(value) for key, value in meta.items()}
    return {"type": "object", "properties": properties}


_BUILTIN_SCHEMAS: dict[tuple[str, str], Schema] = {}


def schema_for(*, group: str, kind: str, crd_schema: Schema | None) -> Schema:
    """The type of a kind as far as ownership needs it: list types and maps.

    ``metadata`` is never taken from here: every kind shares :data:`_METADATA`.
    """
    if crd_schema is not None:
        return crd_schema
    cached = _BUILTIN_SCHEMAS.get((group, kind))
    if cached is None:
        cached = _from_patch_metadata(patch_metadata(group=group, kind=kind) or {})
        _BUILTIN_SCHEMAS[(group, kind)] = cached
    return cached


def top_child(schema: Schema, key: str) -> Schema:
    """The type of an object's top-level field (``metadata`` is the same for every kind)."""
    return _METADATA if key == "metadata" else _child(schema, key)


def _child(schema: Schema, key: str) -> Schema:
    properties = schema.get("properties")
    if properties and key in properties:
        child = properties[key]
        return child if isinstance(child, Mapping) else _ANY
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        return extra
    if key in _BUILTIN_MAPS:
        return _STRING_MAP
    return _ANY


def _is_map(schema: Schema) -> bool:
    """A granular map (entries owned one by one, the map itself a node), not a struct."""
    return "additionalProperties" in schema and not schema.get("properties")


def is_atomic_map(schema: Schema) -> bool:
    """An object owned and replaced as a whole (``x-kubernetes-map-type: atomic``)."""
    return schema.get("x-kubernetes-map-type") == "atomic"


def _list_type(schema: Schema) -> tuple[str, tuple[str, ...]]:
    kind = schema.get("x-kubernetes-list-type")
    if kind == "map":
        keys = schema.get("x-kubernetes-list-map-keys") or ()
        return ("map", tuple(str(k) for k in keys)) if keys else ("atomic", ())
    if kind == "set":
        return "set", ()
    return "atomic", ()


def _items(schema: Schema) -> Schema:
    items = schema.get("items")
    return items if isinstance(items, Mapping) else _ANY


# ------------------------------------------------------------------ flattening


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _key_element(item: Any, keys: tuple[str, ...], item_schema: Schema) -> str | None:
    """An associative list's item as ``k:<json of its keys>``; a key it omits takes the
    default of the item's schema (``protocol`` → ``TCP`` for ports), as Kubernetes does.
    None when a key is missing without a default or is not a scalar."""
    if not isinstance(item, dict):
        return None
    fields: dict[str, Any] = {}
    for key in keys:
        if key in item:
            fields[key] = item[key]
        else:
            default = _child(item_schema, key).get("default")
            if default is None:
                return None
            fields[key] = default
    if any(isinstance(v, (dict, list)) for v in fields.values()):
        return None
    return "k:" + _compact(fields)


def _walk_list(
    value: list[Any], schema: Schema, path: Path, out: dict[Path, Any], maps: bool
) -> None:
    kind, keys = _list_type(schema)
    if kind == "set" and not any(isinstance(v, (dict, list)) for v in value):
        for item in value:
            member: Path = (*path, "v:" + _compact(item))
            out[member] = _NODE
        return
    if kind == "map":
        item_schema = _items(schema)
        elements = [_key_element(item, keys, item_schema) for item in value]
        if None not in elements and len(set(elements)) == len(elements):
            for element, item in zip(elements, value, strict=True):
                assert element is not None
                child = (*path, element)
                out[child] = _NODE
                _walk_dict(item, item_schema, child, out, maps, struct=True)
            return
    out[path] = value  # atomic: owned and compared as a whole


def _walk_dict(
    value: dict[str, Any],
    schema: Schema,
    path: Path,
    out: dict[Path, Any],
    maps: bool,
    *,
    struct: bool,
) -> None:
    for key, item in value.items():
        child_path = (*path, "f:" + key)
        child_schema = _child(schema, key)
        _walk(item, child_schema, child_path, out, maps, member=not struct)


def _walk(
    value: Any, schema: Schema, path: Path, out: dict[Path, Any], maps: bool, *, member: bool
) -> None:
    if isinstance(value, dict):
        if not value or is_atomic_map(schema):
            out[path] = value
            return
        granular = _is_map(schema)
        if member or (maps and granular):
            out[path] = _NODE
        _walk_dict(value, schema, path, out, maps, struct=not granular)
    elif isinstance(value, list):
        _walk_list(value, schema, path, out, maps)
    else:
        out[path] = value


def field_set(
    config: Mapping[str, Any], schema: Schema, *, subresource: str | None, has_status: bool
) -> set[Path]:
    """The fields of an applied configuration: what its ``Apply`` entry owns."""
    out: dict[Path, Any] = {}
    _flatten_top(config, schema, out, subresource=subresource, has_status=has_status, maps=False)
    return set(out)


def _flatten_top(
    obj: Mapping[str, Any],
    schema: Schema,
    out: dict[Path, Any],
    *,
    subresource: str | None,
    has_status: bool,
    maps: bool,
) -> None:
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if subresource == "status" and key != "status":
            continue
        if subresource is None and has_status and key == "status":
            continue
        if subresource == "scale" and key != "spec":
            continue
        if key == "metadata" and isinstance(value, dict):
            kept = _owned_metadata(value)
            if kept:
                _walk_dict(kept, _METADATA, ("f:metadata",), out, maps, struct=True)
            continue
        _walk(value, _child(schema, key), ("f:" + key,), out, maps, member=False)


def _owned_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in _STRIPPED_META}


def diff(
    old: Mapping[str, Any] | None, new: Mapping[str, Any], schema: Schema
) -> tuple[set[Path], set[Path]]:
    """(added or modified, removed) paths from ``old`` to ``new`` (the whole object).

    Equal subtrees are skipped with one comparison; only what differs is flattened.
    """
    touched: set[Path] = set()
    removed: set[Path] = set()
    if old is None:
        flat: dict[Path, Any] = {}
        _flatten_top(new, schema, flat, subresource=None, has_status=False, maps=True)
        return set(flat), removed
    for key in new.keys() | old.keys():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            old_meta, new_meta = old.get(key), new.get(key)
            if isinstance(old_meta, dict) and isinstance(new_meta, dict):
                _diff(
                    _owned_metadata(old_meta),
                    _owned_metadata(new_meta),
                    _METADATA,
                    ("f:metadata",),
                    touched,
                    removed,
                    member=False,
                )
                continue
        _diff(
            old.get(key, _NODE),
            new.get(key, _NODE),
            _child(schema, key),
            ("f:" + key,),
            touched,
            removed,
            member=False,
        )
    return touched, removed


def _diff(
    old: Any,
    new: Any,
    schema: Schema,
    path: Path,
    touched: set[Path],
    removed: set[Path],
    *,
    member: bool,
) -> None:
    if old is new or (type(old) is type(new) and old == new):
        return
    if (
        isinstance(old, dict)
        and isinstance(new, dict)
        and old
        and new
        and not is_atomic_map(schema)
    ):
        struct = not _is_map(schema)
        for key in new.keys() | old.keys():
            _diff(
                old.get(key, _NODE),
                new.get(key, _NODE),
                _child(schema, key),
                (*path, "f:" + key),
                touched,
                removed,
                member=not struct,
            )
        return
    old_flat: dict[Path, Any] = {}
    new_flat: dict[Path, Any] = {}
    if old is not _NODE:
        _walk(old, schema, path, old_flat, True, member=member)
    if new is not _NODE:
        _walk(new, schema, path, new_flat, True, member=member)
    more, fewer = changed(old_flat, new_flat)
    touched |= more
    removed |= fewer


def changed(old: Mapping[Path, Any], new: Mapping[Path, Any]) -> tuple[set[Path], set[Path]]:
    """(added or modified, removed) paths between two flattenings."""
    touched = {
        path
        for path, value in new.items()
        if path not in old or (value is not _NODE and not _same(old[path], value))
    }
    removed = {path for path in old if path not in new}
    return touched, removed


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


# ------------------------------------------------------------------ managers


@attrs.define(eq=False)
class Manager:
    """One ``managedFields`` entry, its fields decoded to a set of paths."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    time: str | None
    subresource: str
    fields: set[Path]
    raw: dict[str, Any] | None = None  # the entry as decoded, while its fields are unchanged

    @property
    def identity(self) -> tuple[str, str, str, str]:
        # Appliers are one manager whatever version they applied with; updaters are not.
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, self.subresource, version)

    def describe(self) -> str:
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


class EntryError(ValueError):
    """A ``managedFields`` entry that a client sent and that cannot be decoded."""


def decode_entries(entries: Any) -> list[Manager]:
    """The stored or sent ``managedFields`` list as managers (raises :class:`EntryError`)."""
    if not isinstance(entries, list):
        raise EntryError("managedFields must be a list")
    managers = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise EntryError("a managedFields entry must be an object")
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            raise EntryError(f"invalid managedFields operation {operation!r}")
        fields_type = entry.get("fieldsType", "FieldsV1")
        if fields_type != "FieldsV1":
            raise EntryError(f"invalid managedFields fieldsType {fields_type!r}")
        fields: set[Path] = set()
        _decode(entry.get("fieldsV1") or {}, (), fields)
        managers.append(
            Manager(
                manager=str(entry.get("manager") or ""),
                operation=operation,
                api_version=str(entry.get("apiVersion") or ""),
                time=entry.get("time"),
                subresource=str(entry.get("subresource") or ""),
                fields=fields,
                raw=entry,
            )
        )
    return managers


def _decode(node: Any, path: Path, out: set[Path]) -> None:
    if not isinstance(node, dict):
        raise EntryError("fieldsV1 must be a tree of objects")
    for key, child in node.items():
        if key == ".":
            out.add(path)
            continue
        if not isinstance(key, str) or key[:2] not in ("f:", "k:", "v:", "i:"):
            raise EntryError(f"invalid fieldsV1 element {key!r}")
        child_path = (*path, key)
        if child:
            _decode(child, child_path, out)
        else:
            out.add(child_path)


def _encode(fields: Iterable[Path]) -> dict[str, Any]:
    # Sorted paths put a node before its children and siblings in order, so the tree's
    # keys come out sorted with "." first; a member left without children is just {}.
    tree: dict[str, Any] = {}
    members = []
    for path in sorted(fields):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        node["."] = {}
        members.append(node)
    for node in members:
        if len(node) == 1:
            node.clear()
    return tree


def encode_entries(managers: list[Manager]) -> list[dict[str, Any]]:
    """Managers as the ``managedFields`` list: Apply before Update, then by time and name."""
    ordered = sorted(
        managers,
        key=lambda m: (m.operation, m.time or "", m.manager, m.api_version, m.subresource),
    )
    entries = []
    for manager in ordered:
        if manager.raw is not None:
            entries.append(manager.raw)
            continue
        entry: dict[str, Any] = {
            "apiVersion": manager.api_version,
            "fieldsType": "FieldsV1",
            "fieldsV1": _encode(manager.fields),
            "manager": manager.manager,
            "operation": manager.operation,
        }
        if manager.subresource:
            entry["subresource"] = manager.subresource
        if manager.time is not None:
            entry["time"] = manager.time
        entries.append(entry)
    return entries


def path_text(path: Path) -> str:
    """A path as the server prints it in conflicts: ``.spec.containers[name="app"].image``."""
    parts = []
    for element in path:
        kind, text = element[:2], element[2:]
        if kind == "f:":
            parts.append("." + text)
        elif kind == "k:":
            fields = json.loads(text)
            parts.append("[" + ",".join(f"{k}={_compact(v)}" for k, v in fields.items()) + "]")
        elif kind == "v:":
            parts.append("[=" + text + "]")
        else:
            parts.append("[" + text + "]")
    return "".join(parts)
