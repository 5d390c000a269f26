"""The scale subresource: an ``autoscaling/v1`` Scale view of an object's replica count."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.resources import ResourceType

__all__ = ["BUILTIN_SCALE_PATHS", "apply_scale", "scale_paths", "to_scale"]

BUILTIN_SCALE_PATHS = {
    "specReplicasPath": ".spec.replicas",
    "statusReplicasPath": ".status.replicas",
    "labelSelectorPath": ".spec.selector",
}


def scale_paths(resource: ResourceType, version: str) -> Mapping[str, str]:
    """The JSON paths of replicas and the selector for this resource's version."""
    if resource.custom:
        return resource.scale_paths.get(version) or {}
    return BUILTIN_SCALE_PATHS


def _get(obj: Mapping[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _selector_text(selector: Any) -> str:
    if isinstance(selector, str):
        return selector
    if not isinstance(selector, Mapping):
        return ""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(expression.get("values") or ())
        if operator == "In":
            terms.append(f"{key} in ({values})")
        elif operator == "NotIn":
            terms.append(f"{key} notin ({values})")
        elif operator == "Exists":
            terms.append(key)
        elif operator == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)


def to_scale(resource: ResourceType, version: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The Scale object for ``obj``."""
    paths = scale_paths(resource, version)
    meta = obj["metadata"]
    scale_meta = {
        k: meta[k]
        for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        if k in meta
    }
    status: dict[str, Any] = {"replicas": _get(obj, paths.get("statusReplicasPath", "")) or 0}
    selector_path = paths.get("labelSelectorPath")
    if selector_path:
        selector = _selector_text(_get(obj, selector_path))
        if selector:
            status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": _get(obj, paths["specReplicasPath"]) or 0},
        "status": status,
    }


def apply_scale(
    resource: ResourceType, version: str, obj: Mapping[str, Any], scale: Any
) -> dict[str, Any]:
    """A copy of ``obj`` with the replicas of ``scale`` (validated) at the spec path."""
    if not isinstance(scale, Mapping):
        raise ApiError(400, "the body must be an autoscaling/v1 Scale object")
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ApiError(
            422,
            f'Scale.autoscaling "{obj["metadata"]["name"]}" is invalid: spec.replicas: Invalid'
            f" value: {replicas!r}: must be greater than or equal to 0",
        )
    paths = scale_paths(resource, version)
    parts = paths["specReplicasPath"].lstrip(".").split(".")
    result: dict[str, Any] = dict(obj)
    node = result
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[parts[-1]] = replicas
    result["metadata"] = dict(obj["metadata"])
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv:
        result["metadata"]["resourceVersion"] = rv  # a precondition, as for the object
    return result
