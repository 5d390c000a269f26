"""Server-side apply and the ownership bookkeeping of every write.

:func:`record` runs inside the store's create and update (as their ``track`` callback), on
the object as it will be stored: it compares it with the stored one and rewrites
``metadata.managedFields``. An ``Update`` takes what it added or changed from the other
managers; an ``Apply`` refuses (409, ``FieldManagerConflict``) to change a field another
manager owns unless forced. :func:`merge` and :func:`prune` build the object an apply asks
for: the applied configuration merged into the live object by the type's list semantics,
then the fields the applier applied before and no longer applies, and nobody else owns,
removed. All functions are synchronous and touch only the request's own objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import attrs

from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.managedfields import (
    EntryError,
    Manager,
    Path,
    Schema,
    _child,
    _items,
    _key_element,
    _list_type,
    decode_entries,
    diff,
    encode_entries,
    field_set,
    is_atomic_map,
    path_text,
    top_child,
)
from trikopf.apiserver.patching import copy_json

__all__ = [
    "LAST_APPLIED",
    "Write",
    "current_managers",
    "last_applied_of",
    "manager_from_user_agent",
    "merge",
    "merge_object",
    "prune",
    "record",
    "stale_fields",
]

_MISSING: Final = object()


@attrs.frozen(kw_only=True)
class Write:
    """Who writes and how: what :func:`record` needs besides the two objects."""

    manager: str
    operation: str  # "Apply" or "Update"
    api_version: str
    subresource: str | None
    schema: Schema
    time: str
    applied: frozenset[Path] = frozenset()  # Apply: the fields of the applied configuration
    force: bool = False


def manager_from_user_agent(user_agent: str) -> str:
    """The default field manager: the user agent up to its first ``/`` (as Kubernetes does)."""
    return user_agent.split("/", 1)[0][:128]


def current_managers(obj: Mapping[str, Any] | None) -> list[Manager]:
    if obj is None:
        return []
    entries = obj["metadata"].get("managedFields")
    if not entries:
        return []
    try:
        return decode_entries(entries)
    except EntryError:
        return []


LAST_APPLIED: Final = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY: Final = "before-first-apply"


def record(old: dict[str, Any] | None, new: dict[str, Any], write: Write) -> None:
    """Rewrite ``new``'s ``managedFields`` for this write; raise 409 on apply conflicts.

    As Kubernetes does: an update of an object that has no ``managedFields`` is not
    tracked (only creates and applies start the bookkeeping); the first apply to such an
    object hands its current fields to ``before-first-apply``; ``kubectl``'s applies may
    take over fields of its client-side ``last-applied-configuration`` without forcing.
    """
    meta = new["metadata"]
    sent = meta.get("managedFields", _MISSING)
    old_entries = old["metadata"].get("managedFields") if old is not None else None
    update = write.operation == "Update"
    if update and sent == [{}]:
        meta.pop("managedFields", None)  # the documented way to clear ownership
        return
    managers = current_managers(old)
    if update and not write.subresource and isinstance(sent, list) and sent != old_entries:
        try:
            managers = decode_entries(sent) or managers  # a client may set ownership
        except EntryError:
            pass  # as Kubernetes does: keep the stored ownership rather than fail the write
    if update and old is not None and not managers:
        meta.pop("managedFields", None)
        return
    subresource = write.subresource if write.subresource in ("status", "scale") else ""
    mine = Manager(
        manager=write.manager,
        operation=write.operation,
        api_version=write.api_version,
        time=None,
        subresource=subresource,
        fields=set(),
    )
    if not update and old is not None and not managers:
        everything, _ = diff(None, old, write.schema)
        managers = [
            Manager(
                manager=BEFORE_FIRST_APPLY,
                operation="Update",
                api_version=write.api_version,
                time=write.time,
                subresource="",
                fields=everything,
            )
        ]
    previous = next((m for m in managers if m.identity == mine.identity), None)
    others = [m for m in managers if m.identity != mine.identity]
    touched, removed = diff(old, new, write.schema)
    if update:
        mine.fields = (previous.fields - removed if previous else set()) | touched
    else:
        conflicts = [(m, p) for m in others for p in sorted(m.fields & touched)]
        if conflicts and not write.force and not _allowed_by_last_applied(old, conflicts, write):
            raise _conflict_error(conflicts)
        mine.fields = set(write.applied)
    for other in others:
        if not other.fields.isdisjoint(touched) or not other.fields.isdisjoint(removed):
            other.fields = other.fields - touched - removed
            other.raw = None  # changed: encode it anew
    # An update's time moves when it took fields; an apply's when anything changed.
    moved = bool(touched) if update else old is None or bool(touched or removed)
    if previous is not None and not moved and previous.fields == mine.fields:
        mine.time = previous.time
        mine.raw = previous.raw
    elif previous is not None and not moved:
        mine.time = previous.time
    else:
        mine.time = write.time
    kept = [m for m in others if m.fields]
    if mine.fields or not update:
        kept.append(mine)
    entries = encode_entries(_cap_updates(kept))
    if entries == old_entries:
        meta["managedFields"] = old_entries
    elif entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


MAX_UPDATE_MANAGERS: Final = 10
ANCIENT_CHANGES: Final = "ancient-changes"


def _cap_updates(managers: list[Manager]) -> list[Manager]:
    """At most ten ``Update`` entries: the oldest are folded into ``ancient-changes``."""
    updaters = [m for m in managers if m.operation == "Update"]
    excess = len(updaters) - MAX_UPDATE_MANAGERS
    if excess <= 0:
        return managers
    updaters.sort(key=lambda m: (m.time or "", m.manager))
    buckets = {
        m.api_version: m for m in updaters if m.manager == ANCIENT_CHANGES and not m.subresource
    }
    first_by_version: dict[str, Manager] = {}
    added: list[Manager] = []
    folded: set[int] = set()
    for manager in updaters:
        if excess <= 0:
            break
        version = manager.api_version
        if buckets.get(version) is manager:
            continue
        bucket = buckets.get(version)
        if bucket is None:
            first = first_by_version.get(version)
            if first is None:
                first_by_version[version] = manager
                continue
            bucket = Manager(
                manager=ANCIENT_CHANGES,
                operation="Update",
                api_version=version,
                time=first.time,
                subresource="",
                fields=set(first.fields),
            )
            buckets[version] = bucket
            added.append(bucket)
            folded.add(id(first))
        bucket.fields = bucket.fields | manager.fields
        bucket.time = manager.time  # the newer of what it holds
        bucket.raw = None
        folded.add(id(manager))
        excess -= 1
    return [m for m in managers if id(m) not in folded] + added


def _allowed_by_last_applied(
    old: Mapping[str, Any] | None, conflicts: list[tuple[Manager, Path]], write: Write
) -> bool:
    """Whether ``kubectl``'s apply may take these fields: all are in its last client-side apply."""
    if write.manager != "kubectl" or old is None:
        return False
    text = (old["metadata"].get("annotations") or {}).get(LAST_APPLIED)
    if not isinstance(text, str):
        return False
    try:
        last = json.loads(text)
    except ValueError:
        return False
    if not isinstance(last, dict):
        return False
    allowed = field_set(last, write.schema, subresource=None, has_status=False)
    return all(path in allowed for _, path in conflicts)


def last_applied_of(config: Mapping[str, Any]) -> str:
    """The ``last-applied-configuration`` that ``kubectl``'s server-side apply leaves behind."""
    copied = copy_json(dict(config))
    metadata = copied.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict):
        metadata["annotations"].pop(LAST_APPLIED, None)
    return json.dumps(copied, separators=(",", ":"), sort_keys=True)


def _conflict_error(conflicts: list[tuple[Manager, Path]]) -> ApiError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {manager.describe()}",
            "field": path_text(path),
        }
        for manager, path in conflicts
    ]
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {manager.describe()}: {path_text(path)}"
        )
    else:
        by_manager: dict[str, list[str]] = {}
        for manager, path in conflicts:
            by_manager.setdefault(manager.describe(), []).append(path_text(path))
        lines = []
        for name in sorted(by_manager):
            lines.append(f"conflicts with {name}:")
            lines.extend(f"- {text}" for text in by_manager[name])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, message, reason="Conflict", details={"causes": causes})


# ------------------------------------------------------------------ merging


def merge_object(live: dict[str, Any], config: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """The applied configuration merged into the live object (see :func:`merge`)."""
    result = dict(live)
    for key, value in config.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(live.get(key), value, top_child(schema, key))
    return result


def merge(live: Any, config: Any, schema: Schema) -> Any:
    """The applied configuration merged into the live object (neither is changed).

    Objects merge field by field (``null`` removes a field), associative lists item by item
    on their keys, sets as a union; scalars and atomic lists are replaced.
    """
    if isinstance(config, dict):
        if not isinstance(live, dict) or is_atomic_map(schema):
            return copy_json(config)
        result = dict(live)
        for key, value in config.items():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = merge(live.get(key), value, _child(schema, key))
        return result
    if isinstance(config, list) and isinstance(live, list):
        kind, keys = _list_type(schema)
        if kind == "set" and not any(isinstance(v, (dict, list)) for v in config + live):
            return [*live, *(v for v in config if v not in live)]
        if kind == "map":
            return _merge_map_list(live, config, keys, _items(schema))
    return copy_json(config)


def _merge_map_list(live: list[Any], config: list[Any], keys: tuple[str, ...], item: Schema) -> Any:
    live_keys = [_key_element(v, keys, item) for v in live]
    config_keys = [_key_element(v, keys, item) for v in config]
    if None in live_keys or None in config_keys:
        return copy_json(config)
    result = list(live)
    positions = {k: i for i, k in enumerate(live_keys)}
    for element, value in zip(config_keys, config, strict=True):
        index = positions.get(element)
        if index is None:
            positions[element] = len(result)
            result.append(copy_json(value))
        else:
            result[index] = merge(result[index], value, item)
    return result


# ------------------------------------------------------------------ pruning


def stale_fields(live: Mapping[str, Any] | None, write: Write) -> set[Path]:
    """Fields the applier applied last time, applies no more, and nobody else owns."""
    managers = current_managers(live)
    identity = ("Apply", write.subresource if write.subresource in ("status", "scale") else "")
    last = next(
        (
            m
            for m in managers
            if (m.manager, m.operation, m.subresource) == (write.manager, *identity)
        ),
        None,
    )
    if last is None:
        return set()
    owned = set(write.applied)
    for m in managers:
        if m is not last:
            owned |= m.fields
    stale = last.fields - owned
    # A node stays while anyone owns something beneath it, and so do the key fields of an
    # item that stays.
    return {
        p
        for p in stale
        if not any(o[: len(p)] == p and o != p for o in owned) and not _is_key_field(p, stale)
    }


def _is_key_field(path: Path, stale: set[Path]) -> bool:
    if len(path) < 2 or not path[-2].startswith("k:") or path[:-1] in stale:
        return False
    return path[-1][2:] in json.loads(path[-2][2:])


def prune(obj: dict[str, Any], paths: set[Path]) -> None:
    """Remove these fields from ``obj`` (in place), and the containers they leave empty.

    A field under another one being removed goes with it: its own path may no longer
    resolve once a key field of its list item is gone.
    """
    done: list[Path] = []
    for path in sorted(paths, key=len):
        if any(path[: len(d)] == d for d in done):
            continue
        _remove(obj, path)
        done.append(path)


def _remove(node: Any, path: Path) -> bool:
    """Remove ``path`` under ``node``; True if ``node`` was left empty by the removal."""
    element, rest = path[0], path[1:]
    if isinstance(node, dict) and element.startswith("f:"):
        key = element[2:]
        if key not in node:
            return False
        if not rest or _remove(node[key], rest):
            del node[key]
            return not node
        return False
    if not isinstance(node, list):
        return False
    index = _find(node, element)
    if index is None:
        return False
    if not rest or _remove(node[index], rest):
        del node[index]
        return not node
    return False


def _find(items: list[Any], element: str) -> int | None:
    kind, text = element[:2], element[2:]
    if kind == "i:":
        index = int(text)
        return index if 0 <= index < len(items) else None
    wanted = json.loads(text)
    for index, item in enumerate(items):
        if kind == "v:" and item == wanted:
            return index
        if (
            kind == "k:"
            and isinstance(item, dict)
            and all(item.get(k) == v for k, v in wanted.items())
        ):
            return index
    return None
