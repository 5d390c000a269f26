"""Defaults applied as objects are written: a CRD's structural schema for custom resources,
and the built-in kinds' own defaulters (:func:`builtin_defaults`)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["apply_defaults", "builtin_defaults"]


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


# --- the built-in kinds ---------------------------------------------------------------------
#
# What a real API server's defaulters fill in when a built-in object is written without them:
# the fields an operator reading its children back (or comparing them with what it wrote)
# finds on a real cluster. Allocations (cluster IPs, node ports) and admission (service
# accounts, priorities, tolerations) are not defaults and are not made here.


def builtin_defaults(key: tuple[str, str], obj: dict[str, Any]) -> None:
    """Fill the absent fields of a built-in object (``key``: group and plural) in place."""
    defaulter = _BUILTIN.get(key)
    if defaulter is not None:
        defaulter(obj)


def _dict(parent: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = parent.get(name)
    return value if isinstance(value, dict) else None


def _items(parent: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = parent.get(name)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _pull_policy(image: Any) -> str:
    """``Always`` for an image tagged ``latest`` or not tagged at all, else ``IfNotPresent``."""
    if not isinstance(image, str) or "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] or "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _container(container: dict[str, Any]) -> None:
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("imagePullPolicy", _pull_policy(container.get("image")))
    container.setdefault("resources", {})
    for port in _items(container, "ports"):
        port.setdefault("protocol", "TCP")


def _pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in _items(spec, field):
            _container(container)


def _template(parent: dict[str, Any] | None) -> None:
    template = _dict(parent, "template") if parent is not None else None
    spec = _dict(template, "spec") if template is not None else None
    if spec is not None:
        _pod_spec(spec)


def _pod(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        _pod_spec(spec)


def _pod_template(obj: dict[str, Any]) -> None:
    _template(obj)


def _replicated(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = _dict(obj, "spec")
    if spec is not None:
        spec.setdefault("replicas", 1)
        _template(spec)
    return spec


def _replica_set(obj: dict[str, Any]) -> None:
    _replicated(obj)


def _strategy(spec: dict[str, Any], field: str, **rolling_update: Any) -> None:
    """A ``RollingUpdate`` strategy by default, with the kind's rolling-update defaults."""
    strategy = spec.setdefault(field, {})
    if not isinstance(strategy, dict):
        return
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        if isinstance(rolling, dict):
            for name, value in rolling_update.items():
                rolling.setdefault(name, value)


def _deployment(obj: dict[str, Any]) -> None:
    spec = _replicated(obj)
    if spec is not None:
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _strategy(spec, "strategy", maxUnavailable="25%", maxSurge="25%")


def _stateful_set(obj: dict[str, Any]) -> None:
    spec = _replicated(obj)
    if spec is None:
        return
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    _strategy(spec, "updateStrategy", partition=0)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    if isinstance(retention, dict):
        retention.setdefault("whenDeleted", "Retain")
        retention.setdefault("whenScaled", "Retain")


def _daemon_set(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        _template(spec)
        spec.setdefault("revisionHistoryLimit", 10)
        _strategy(spec, "updateStrategy", maxUnavailable=1, maxSurge=0)


def _job_spec(spec: dict[str, Any]) -> None:
    if "completions" not in spec and "parallelism" not in spec:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    _template(spec)


def _job(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        _job_spec(spec)


def _cron_job(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    template = _dict(spec, "jobTemplate")
    job_spec = _dict(template, "spec") if template is not None else None
    if job_spec is not None:
        _job_spec(job_spec)


def _service(obj: dict[str, Any]) -> None:
    spec = _dict(obj, "spec")
    if spec is None:
        return
    kind = spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        config = spec.setdefault("sessionAffinityConfig", {})
        client_ip = _dict(config, "clientIP") if isinstance(config, dict) else None
        if client_ip is None and isinstance(config, dict):
            client_ip = config["clientIP"] = {}
        if client_ip is not None:
            client_ip.setdefault("timeoutSeconds", 10800)
    if kind != "ExternalName":
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in _items(spec, "ports"):
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]


_BUILTIN: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("", "pods"): _pod,
    ("", "podtemplates"): _pod_template,
    ("", "replicationcontrollers"): _replica_set,
    ("", "services"): _service,
    ("apps", "deployments"): _deployment,
    ("apps", "replicasets"): _replica_set,
    ("apps", "statefulsets"): _stateful_set,
    ("apps", "daemonsets"): _daemon_set,
    ("batch", "jobs"): _job,
    ("batch", "cronjobs"): _cron_job,
}
