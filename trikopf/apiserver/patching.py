"""Patches as the Kubernetes API server applies them: merge, JSON and strategic merge.

- :func:`apply_merge_patch`: RFC 7386 JSON merge patch (``application/merge-patch+json``).
- :func:`apply_json_patch`: RFC 6902 JSON patch (``application/json-patch+json``), including
  ``test``, ``move``, ``copy`` and JSON-pointer escapes (``~0``, ``~1``).
- :func:`apply_strategic_merge_patch`: the strategic merge patch of built-in kinds
  (``application/strategic-merge-patch+json``): lists merged by their patch merge key
  (containers, env, ports, volumes, volumeMounts by name or port; ownerReferences by uid),
  finalizers merged as sets, and the directives ``$patch``, ``$retainKeys``,
  ``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>``. Custom resources do
  not support it: :class:`PatchError` with code 415, as a real server answers.

All functions are pure: they never mutate their inputs and return new objects. Malformed
patches raise :class:`PatchError` with code 400; patches that cannot be applied (a failed
``test``, a missing path) raise it with code 422.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "PATCH_CONTENT_TYPES",
    "STRATEGIC_MERGE_PATCH",
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_patch",
    "apply_strategic_merge_patch",
    "copy_json",
    "supports_strategic_merge_patch",
]

JSON_PATCH: Final = "application/json-patch+json"
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH: Final = "application/strategic-merge-patch+json"
APPLY_PATCH: Final = "application/apply-patch+yaml"
PATCH_CONTENT_TYPES: Final = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


class PatchError(ValueError):
    """A patch that is malformed (400), cannot be applied (422) or is not supported (415)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def copy_json(value: Any) -> Any:
    """Deep-copy a JSON value (much faster than :func:`copy.deepcopy` for plain data)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: unlike Python's, ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and bool(a == b)


def apply_patch(
    content_type: str,
    target: Mapping[str, Any],
    patch: Any,
    *,
    group: str,
    kind: str,
) -> dict[str, Any]:
    """Apply a decoded patch body by its ``Content-Type`` (parameters after ``;`` ignored).

    Unknown patch types raise :class:`PatchError` with code 415.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == MERGE_PATCH:
        return apply_merge_patch(target, patch)
    if media_type == JSON_PATCH:
        return apply_json_patch(target, patch)
    if media_type == STRATEGIC_MERGE_PATCH:
        return apply_strategic_merge_patch(target, patch, group=group, kind=kind)
    accepted = [JSON_PATCH, MERGE_PATCH]
    if supports_strategic_merge_patch(group=group, kind=kind):
        accepted.append(STRATEGIC_MERGE_PATCH)
    raise PatchError(
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
        code=415,
    )


# --- RFC 7386 -------------------------------------------------------------------------------


def _merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = copy_json(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


def apply_merge_patch(target: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 merge patch: objects merge, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        raise PatchError("merge patch must be a JSON object", code=400)
    result = _merge(dict(target), patch)
    assert isinstance(result, dict)
    return result


# --- RFC 6902 -------------------------------------------------------------------------------

_JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def _parse_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str):
        raise PatchError(f"invalid JSON pointer {pointer!r}: not a string", code=400)
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}: must start with '/'", code=400)
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _list_index(container: list[Any], token: str, pointer: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in path {pointer}")
    index = int(token)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds in path {pointer}")
    return index


def _resolve_parent(doc: Any, parts: list[str], pointer: str) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {pointer} does not exist: missing key {token!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, pointer, for_add=False)]
        else:
            raise PatchError(f"path {pointer} does not exist: {token!r} is inside a scalar")
    return node


def _get(doc: Any, pointer: str) -> Any:
    parts = _parse_pointer(pointer)
    if not parts:
        return doc
    parent = _resolve_parent(doc, parts, pointer)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path {pointer} does not exist")
        return parent[token]
    if isinstance(parent, list):
        return parent[_list_index(parent, token, pointer, for_add=False)]
    raise PatchError(f"path {pointer} does not exist")


def _add(doc: Any, pointer: str, value: Any) -> Any:
    parts = _parse_pointer(pointer)
    if not parts:
        return value
    parent = _resolve_parent(doc, parts, pointer)
    token = parts[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, token, pointer, for_add=True), value)
    else:
        raise PatchError(f"cannot add at {pointer}: the parent is not an object or array")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    parts = _parse_pointer(pointer)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _resolve_parent(doc, parts, pointer)
    token = parts[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"unable to remove nonexistent key {token!r}: path {pointer}")
        return doc, parent.pop(token)
    if isinstance(parent, list):
        return doc, parent.pop(_list_index(parent, token, pointer, for_add=False))
    raise PatchError(f"cannot remove {pointer}: the parent is not an object or array")


def _operation_field(op: Mapping[str, Any], name: str, index: int) -> Any:
    if name not in op:
        raise PatchError(f"operation {index} ({op.get('op')}) is missing {name!r}", code=400)
    return op[name]


def apply_json_patch(target: Mapping[str, Any], ops: Any) -> dict[str, Any]:
    """Apply an RFC 6902 JSON patch (a list of operations), all or nothing."""
    if not isinstance(ops, list):
        raise PatchError("JSON patch must be a JSON array of operations", code=400)
    for index, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"operation {index} is not a JSON object", code=400)
        if op.get("op") not in _JSON_PATCH_OPS:
            raise PatchError(f"operation {index} has an unknown op {op.get('op')!r}", code=400)
        _parse_pointer(_operation_field(op, "path", index))
    doc: Any = copy_json(dict(target))
    for index, op in enumerate(ops):
        name = op["op"]
        path = op["path"]
        if name == "add":
            doc = _add(doc, path, copy_json(_operation_field(op, "value", index)))
        elif name == "remove":
            doc, _ = _remove(doc, path)
        elif name == "replace":
            value = copy_json(_operation_field(op, "value", index))
            if _parse_pointer(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, value)
        elif name == "move":
            source = _operation_field(op, "from", index)
            if path != source and path.startswith(source + "/"):
                raise PatchError(f"cannot move {source} into its own child {path}")
            doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif name == "copy":
            value = copy_json(_get(doc, _operation_field(op, "from", index)))
            doc = _add(doc, path, value)
        else:  # test
            expected = _operation_field(op, "value", index)
            if not _json_equal(_get(doc, path), expected):
                raise PatchError(f"test operation failed: the value at {path} is not {expected!r}")
    if not isinstance(doc, dict):
        raise PatchError("the patched document is not a JSON object")
    return doc


# --- strategic merge patch ------------------------------------------------------------------


@attrs.frozen
class _List:
    """Patch metadata of a list field: merged by a key, merged as a set, or replaced."""

    merge_key: str | None = None  # lists of objects merged element by element on this key
    primitive_set: bool = False  # lists of scalars merged as a set (e.g. finalizers)
    item: Mapping[str, Any] | None = None  # metadata of the elements (objects)
    # Server-side apply keys the list on all of these (its x-kubernetes-list-map-keys), where
    # the strategic merge patch uses merge_key alone; a key an item omits takes its default.
    apply_keys: tuple[tuple[str, Any], ...] = ()  # (key, default or None)


_Struct = Mapping[str, Any]  # field name -> nested _Struct or _List

_SET = _List(primitive_set=True)
_OBJECT_META: _Struct = {"ownerReferences": _List("uid"), "finalizers": _SET}
_CONDITIONS = _List("type")
_CONTAINER: _Struct = {
    "env": _List("name"),
    "ports": _List("containerPort", apply_keys=(("containerPort", None), ("protocol", "TCP"))),
    "volumeMounts": _List("mountPath"),
    "volumeDevices": _List("devicePath"),
}
_POD_SPEC: _Struct = {
    "containers": _List("name", item=_CONTAINER),
    "initContainers": _List("name", item=_CONTAINER),
    "ephemeralContainers": _List("name", item=_CONTAINER),
    "volumes": _List("name"),
    "imagePullSecrets": _List("name"),
    "hostAliases": _List("ip"),
    "topologySpreadConstraints": _List("topologyKey"),
    "resourceClaims": _List("name"),
    "schedulingGates": _List("name"),
}
_POD_STATUS: _Struct = {"conditions": _CONDITIONS, "podIPs": _List("ip"), "hostIPs": _List("ip")}
_POD_TEMPLATE: _Struct = {"metadata": _OBJECT_META, "spec": _POD_SPEC}
_WORKLOAD: _Struct = {
    "metadata": _OBJECT_META,
    "spec": {"template": _POD_TEMPLATE},
    "status": {"conditions": _CONDITIONS},
}
_PLAIN: _Struct = {"metadata": _OBJECT_META}

# The built-in kinds the embedded server stores, with the patch metadata of their lists.
_BUILTIN_KINDS: dict[tuple[str, str], _Struct] = {
    ("", "Pod"): {"metadata": _OBJECT_META, "spec": _POD_SPEC, "status": _POD_STATUS},
    ("", "PodTemplate"): {"metadata": _OBJECT_META, "template": _POD_TEMPLATE},
    ("", "ReplicationController"): _WORKLOAD,
    ("apps", "Deployment"): _WORKLOAD,
    ("apps", "ReplicaSet"): _WORKLOAD,
    ("apps", "StatefulSet"): _WORKLOAD,
    ("apps", "DaemonSet"): _WORKLOAD,
    ("batch", "Job"): _WORKLOAD,
    ("batch", "CronJob"): {
        "metadata": _OBJECT_META,
        "spec": {"jobTemplate": {"metadata": _OBJECT_META, "spec": {"template": _POD_TEMPLATE}}},
    },
    ("", "Service"): {
        "metadata": _OBJECT_META,
        "spec": {"ports": _List("port", apply_keys=(("port", None), ("protocol", "TCP")))},
        "status": {"conditions": _CONDITIONS},
    },
    ("", "ServiceAccount"): {"metadata": _OBJECT_META, "secrets": _List("name")},
    ("", "Namespace"): {"metadata": _OBJECT_META, "status": {"conditions": _CONDITIONS}},
    ("", "Node"): {
        "metadata": _OBJECT_META,
        "status": {"conditions": _CONDITIONS, "addresses": _List("type")},
    },
    ("", "ConfigMap"): _PLAIN,
    ("", "Secret"): _PLAIN,
    ("", "Event"): _PLAIN,
    ("", "Endpoints"): _PLAIN,
    ("", "PersistentVolumeClaim"): _PLAIN,
    ("", "PersistentVolume"): _PLAIN,
    ("events.k8s.io", "Event"): _PLAIN,
    ("coordination.k8s.io", "Lease"): _PLAIN,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _PLAIN,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): {
        "metadata": _OBJECT_META,
        "webhooks": _List("name"),
    },
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): {
        "metadata": _OBJECT_META,
        "webhooks": _List("name"),
    },
    ("rbac.authorization.k8s.io", "Role"): _PLAIN,
    ("rbac.authorization.k8s.io", "ClusterRole"): _PLAIN,
    ("rbac.authorization.k8s.io", "RoleBinding"): _PLAIN,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _PLAIN,
    ("networking.k8s.io", "Ingress"): _PLAIN,
    ("policy", "PodDisruptionBudget"): _PLAIN,
}

_DELETE_FROM = "$deleteFromPrimitiveList/"
_SET_ORDER = "$setElementOrder/"
_RETAIN_KEYS = "$retainKeys"
_PATCH = "$patch"


def supports_strategic_merge_patch(*, group: str, kind: str) -> bool:
    """Whether the server accepts strategic merge patches for this kind (built-ins only)."""
    return (group, kind) in _BUILTIN_KINDS


def patch_metadata(*, group: str, kind: str) -> Mapping[str, Any] | None:
    """The strategic-merge metadata of a built-in kind (``None`` for custom resources)."""
    return _BUILTIN_KINDS.get((group, kind))


def apply_strategic_merge_patch(
    target: Mapping[str, Any], patch: Any, *, group: str, kind: str
) -> dict[str, Any]:
    """Apply a strategic merge patch to an object of a built-in kind.

    Lists with a patch merge key are merged element by element; ``finalizers`` are merged as
    a set; other lists are replaced; objects merge recursively and ``null`` deletes a field.
    """
    meta = _BUILTIN_KINDS.get((group, kind))
    if meta is None:
        raise PatchError(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}",
            code=415,
        )
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", code=400)
    result = _smp_map(copy_json(dict(target)), patch, meta)
    if result is None:
        raise PatchError("a strategic merge patch cannot delete the whole object", code=422)
    return result


def _smp_map(
    original: dict[str, Any], patch: Mapping[str, Any], meta: _Struct | None
) -> dict[str, Any] | None:
    """Merge ``patch`` into ``original`` (which this function owns and may change)."""
    meta = meta or {}
    directive = patch.get(_PATCH)
    if directive is not None:
        if directive == "delete":
            return None
        if directive == "replace":
            return {k: copy_json(v) for k, v in patch.items() if k != _PATCH}
        if directive != "merge":
            raise PatchError(f"unknown patch type: {directive!r} in map", code=400)
    retain = patch.get(_RETAIN_KEYS)
    if retain is not None:
        if not isinstance(retain, list) or not all(isinstance(k, str) for k in retain):
            raise PatchError("$retainKeys must be a list of field names", code=400)
        for key in patch:
            if not key.startswith("$") and key not in retain and patch[key] is not None:
                raise PatchError(
                    f"the patch has a field {key!r} that is not listed in $retainKeys", code=422
                )
        for key in list(original):
            if key not in retain:
                del original[key]

    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_PATCH, _RETAIN_KEYS):
            continue
        if key.startswith(_SET_ORDER):
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list", code=400)
            orders[key[len(_SET_ORDER) :]] = value
            continue
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list", code=400)
            current = original.get(field)
            if isinstance(current, list):
                doomed = [v for v in value]
                original[field] = [v for v in current if not any(_json_equal(v, d) for d in doomed)]
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown patch directive {key!r}", code=400)
        field_meta = meta.get(key)
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            current = original.get(key)
            sub = field_meta if isinstance(field_meta, Mapping) else None
            merged = _smp_map(current if isinstance(current, dict) else {}, value, sub)
            if merged is None:
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            current = original.get(key)
            list_meta = field_meta if isinstance(field_meta, _List) else _List()
            original[key] = _smp_list(
                current if isinstance(current, list) else [], value, list_meta
            )
        else:
            original[key] = value

    for field, order in orders.items():
        current = original.get(field)
        if isinstance(current, list):
            field_meta = meta.get(field)
            key_name = field_meta.merge_key if isinstance(field_meta, _List) else None
            original[field] = _reorder(current, order, key_name)
    return original


def _smp_list(original: list[Any], patch: list[Any], meta: _List) -> list[Any]:
    if meta.primitive_set:
        if any(isinstance(v, (dict, list)) for v in patch):
            raise PatchError("a set-like list may hold only scalar values", code=422)
        merged = list(original)
        for value in patch:
            if not any(_json_equal(value, m) for m in merged):
                merged.append(value)
        return merged
    if meta.merge_key is None:
        # Atomic list: replaced, except that a bare {"$patch": "replace"} marker is dropped.
        return [
            copy_json(v) for v in patch if not (isinstance(v, dict) and v.get(_PATCH) == "replace")
        ]
    key = meta.merge_key
    replace = any(isinstance(v, dict) and v.get(_PATCH) == "replace" for v in patch)
    if replace:
        return [
            copy_json({k: v for k, v in item.items() if k != _PATCH})
            for item in patch
            if not (isinstance(item, dict) and item.get(_PATCH) == "replace")
        ]
    merged = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(
                f"the list merged by {key!r} may hold only objects, got {item!r}", code=422
            )
        if key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}", code=422)
        position = next(
            (
                i
                for i, existing in enumerate(merged)
                if isinstance(existing, dict) and _json_equal(existing.get(key), item[key])
            ),
            None,
        )
        if item.get(_PATCH) == "delete":
            if position is not None:
                del merged[position]
            continue
        if position is None:
            result = _smp_map({}, item, meta.item)
            if result is not None:
                merged.append(result)
        else:
            existing = merged[position]
            result = _smp_map(existing, item, meta.item)
            if result is None:
                del merged[position]
            else:
                merged[position] = result
    return merged


def _reorder(items: list[Any], order: Sequence[Any], key: str | None) -> list[Any]:
    """Order a list as ``$setElementOrder`` says; elements it does not name keep their order."""

    def identity(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [identity(o) if key is not None and isinstance(o, dict) else o for o in order]

    def rank(item: Any) -> int | None:
        ident = identity(item)
        for index, value in enumerate(wanted):
            if _json_equal(value, ident):
                return index
        return None

    ranked = sorted((r, i) for i, item in enumerate(items) if (r := rank(item)) is not None)
    ordered = iter([items[i] for _, i in ranked])
    # Named elements fill the slots that named elements held; the others stay where they were.
    return [next(ordered) if rank(item) is not None else item for item in items]
