"""Resource types the server serves: the built-in kinds and the ones CRDs register."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["BUILTIN_RESOURCES", "Registry", "ResourceType", "resource_from_crd"]

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@attrs.frozen(kw_only=True)
class ResourceType:
    """One served resource (group + plural), with every version that serves it."""

    group: str
    versions: tuple[str, ...]  # served versions, the preferred (storage) one first
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = ALL_VERBS
    has_generation: bool = False
    custom: bool = False
    # Per-version extras of custom resources.
    printer_columns: Mapping[str, tuple[dict[str, Any], ...]] = attrs.field(factory=dict)
    schemas: Mapping[str, dict[str, Any] | None] = attrs.field(factory=dict)
    selectable_fields: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    scale_paths: Mapping[str, dict[str, str]] = attrs.field(factory=dict)
    name_is_label: bool = False  # names must be DNS-1123 labels (namespaces, services)

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def storage_version(self) -> str:
        return self.versions[0]

    def api_version(self, version: str | None = None) -> str:
        version = version or self.storage_version
        return f"{self.group}/{version}" if self.group else version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: Iterable[str] = (),
    has_generation: bool = False,
    name_is_label: bool = False,
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        versions=(version,),
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short_names,
        categories=categories,
        subresources=frozenset(subresources),
        has_generation=has_generation,
        name_is_label=name_is_label,
        verbs=verbs,
    )


BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _builtin(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=("status",),
        name_is_label=True,
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    ),
    _builtin("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _builtin("", "v1", "secrets", "Secret"),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _builtin(
        "",
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        categories=("all",),
        subresources=("status",),
        name_is_label=True,
        verbs=("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"),
    ),
    _builtin(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status",),
    ),
    _builtin("", "v1", "events", "Event", short_names=("ev",)),
    _builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        categories=("all",),
        subresources=("status", "scale"),
        has_generation=True,
    ),
    _builtin("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _builtin(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        short_names=("pvc",),
        subresources=("status",),
    ),
    _builtin(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        short_names=("quota",),
        subresources=("status",),
    ),
    _builtin("", "v1", "limitranges", "LimitRange", short_names=("limits",)),
    _builtin(
        "",
        "v1",
        "nodes",
        "Node",
        namespaced=False,
        short_names=("no",),
        subresources=("status",),
    ),
    _builtin(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        categories=("all",),
        subresources=("status", "scale"),
        has_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        short_names=("sts",),
        categories=("all",),
        subresources=("status", "scale"),
        has_generation=True,
    ),
    _builtin(
        "apps",
        "v1",
        "daemonsets",
        "DaemonSet",
        short_names=("ds",),
        categories=("all",),
        subresources=("status",),
        has_generation=True,
    ),
    _builtin(
        "batch",
        "v1",
        "jobs",
        "Job",
        categories=("all",),
        subresources=("status",),
        has_generation=True,
    ),
    _builtin(
        "batch",
        "v1",
        "cronjobs",
        "CronJob",
        short_names=("cj",),
        categories=("all",),
        subresources=("status",),
        has_generation=True,
    ),
    _builtin(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        short_names=("ing",),
        subresources=("status",),
        has_generation=True,
    ),
    _builtin("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease"),
    _builtin(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
        has_generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        categories=("api-extensions",),
        has_generation=True,
    ),
    _builtin(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
        categories=("api-extensions",),
        has_generation=True,
    ),
)

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NAMESPACE_KEY = ("", "namespaces")


def resource_from_crd(crd: Mapping[str, Any]) -> ResourceType:
    """The resource a (validated) CRD body registers."""
    spec = crd["spec"]
    names = spec["names"]
    versions = [v for v in spec.get("versions") or () if v.get("served", True)]
    storage = [v["name"] for v in versions if v.get("storage")]
    ordered = storage + [v["name"] for v in versions if v["name"] not in storage]
    subresources: set[str] = set()
    printer_columns: dict[str, tuple[dict[str, Any], ...]] = {}
    schemas: dict[str, dict[str, Any] | None] = {}
    selectable: dict[str, tuple[str, ...]] = {}
    scales: dict[str, dict[str, str]] = {}
    for v in versions:
        selectable[v["name"]] = tuple(
            str(f.get("jsonPath", "")).lstrip(".")
            for f in v.get("selectableFields") or ()
            if isinstance(f, dict)
        )
        subs = v.get("subresources") or spec.get("subresources") or {}
        if "status" in subs:
            subresources.add("status")
        if isinstance(subs.get("scale"), dict) and subs["scale"].get("specReplicasPath"):
            subresources.add("scale")
            scales[v["name"]] = {k: str(p) for k, p in subs["scale"].items() if isinstance(p, str)}
        columns = v.get("additionalPrinterColumns") or spec.get("additionalPrinterColumns") or []
        printer_columns[v["name"]] = tuple(columns)
        schema = (v.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        schemas[v["name"]] = schema
    return ResourceType(
        group=spec["group"],
        versions=tuple(ordered),
        plural=names["plural"],
        singular=names.get("singular") or names["kind"].lower(),
        kind=names["kind"],
        namespaced=spec.get("scope", "Namespaced") == "Namespaced",
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=frozenset(subresources),
        has_generation=True,
        custom=True,
        printer_columns=printer_columns,
        schemas=schemas,
        selectable_fields=selectable,
        scale_paths=scales,
    )


@attrs.define(eq=False)
class Registry:
    """The resources served right now, by (group, plural)."""

    _by_key: dict[tuple[str, str], ResourceType] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for resource in BUILTIN_RESOURCES:
            self._by_key[resource.key] = resource

    def add(self, resource: ResourceType) -> None:
        self._by_key[resource.key] = resource

    def remove(self, key: tuple[str, str]) -> None:
        self._by_key.pop(key, None)

    def get(self, key: tuple[str, str]) -> ResourceType | None:
        return self._by_key.get(key)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        resource = self._by_key.get((group, plural))
        if resource is None or version not in resource.versions:
            return None
        return resource

    def all(self) -> list[ResourceType]:
        return list(self._by_key.values())

    def find(self, text: str) -> ResourceType | None:
        """By plural, singular, kind, short name, or ``plural.group`` (for tests)."""
        lowered = text.lower()
        for resource in self._by_key.values():
            if lowered == resource.qualified or text == resource.kind:
                return resource
        for resource in self._by_key.values():
            if (
                lowered in (resource.plural, resource.singular, resource.kind.lower())
                or lowered in resource.short_names
            ):
                return resource
        return None

    def groups(self) -> dict[str, list[str]]:
        """Non-core groups and their versions, preferred version first."""
        result: dict[str, list[str]] = {}
        for resource in self._by_key.values():
            if not resource.group:
                continue
            versions = result.setdefault(resource.group, [])
            for version in resource.versions:
                if version not in versions:
                    versions.append(version)
        for versions in result.values():
            versions.sort(key=_version_priority)
        return result


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA before beta before alpha, higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0, version)
    major = int(match.group(1))
    stage = {"": 0, "beta": 1, "alpha": 2}[match.group(2) or ""]
    minor = int(match.group(3) or 0)
    return (stage, -major, -minor, version)
