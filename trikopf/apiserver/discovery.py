"""Discovery documents: /version, /api, /apis, APIGroups and APIResourceLists.

Aggregated discovery (``Accept: ...;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``,
or ``v2beta1``) gets the aggregated document with its media type, so kubectl learns
everything from ``/api`` and ``/apis`` alone; any other Accept gets the legacy documents.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from trikopf.apiserver.resources import Registry, ResourceType

__all__ = [
    "aggregated_discovery",
    "aggregated_version",
    "api_group",
    "api_group_list",
    "api_resource_list",
    "api_versions",
    "version_info",
]

SERVER_MAJOR = "1"
SERVER_MINOR = "32"


def version_info() -> dict[str, Any]:
    return {
        "major": SERVER_MAJOR,
        "minor": SERVER_MINOR,
        "gitVersion": f"v{SERVER_MAJOR}.{SERVER_MINOR}.0+trikopf",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group_body(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = registry.groups()
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_body(name, groups[name]) for name in sorted(groups)],
    }


def api_group(registry: Registry, name: str) -> dict[str, Any] | None:
    versions = registry.groups().get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_body(name, versions)}


def _storage_hash(resource: ResourceType) -> str:
    digest = hashlib.sha256(f"{resource.group}/{resource.storage_version}/{resource.kind}".encode())
    return base64.b64encode(digest.digest()[:8]).decode()


def _entries(resource: ResourceType) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": resource.plural,
        "singularName": resource.singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    entry["storageVersionHash"] = _storage_hash(resource)
    entries = [entry]
    for sub in sorted(resource.subresources):
        sub_entry: dict[str, Any] = {
            "name": f"{resource.plural}/{sub}",
            "singularName": "",
            "namespaced": resource.namespaced,
        }
        if sub == "scale":
            sub_entry.update(group="autoscaling", version="v1", kind="Scale")
        else:
            sub_entry["kind"] = resource.kind
        sub_entry["verbs"] = ["get", "patch", "update"]
        entries.append(sub_entry)
    return entries


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = [r for r in registry.all() if r.group == group and version in r.versions]
    if not resources and not (group == "" and version == "v1"):
        return None
    entries: list[dict[str, Any]] = []
    for resource in sorted(resources, key=lambda r: r.plural):
        entries.extend(_entries(resource))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": entries,
    }


def aggregated_version(accept: str | None) -> str | None:
    """``v2`` or ``v2beta1`` if the Accept header asks for aggregated discovery first."""
    for media_range in (accept or "").split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        values = {}
        for param in params:
            name, _, value = param.partition("=")
            values[name.strip().lower()] = value.strip()
        if (
            media_type == "application/json"
            and values.get("g") == "apidiscovery.k8s.io"
            and values.get("as") == "APIGroupDiscoveryList"
            and values.get("v") in ("v2", "v2beta1")
        ):
            return values["v"]
        if media_type in ("application/json", "*/*", "application/*") and not values:
            return None  # the client prefers the legacy document
    return None


def _discovery_resource(resource: ResourceType, version: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource.plural,
        "responseKind": {"group": resource.group, "version": version, "kind": resource.kind},
        "scope": "Namespaced" if resource.namespaced else "Cluster",
        "singularResource": resource.singular,
        "verbs": list(resource.verbs),
    }
    if resource.short_names:
        entry["shortNames"] = list(resource.short_names)
    if resource.categories:
        entry["categories"] = list(resource.categories)
    subresources = []
    for sub in sorted(resource.subresources):
        if sub == "scale":
            kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        else:
            kind = {"group": resource.group, "version": version, "kind": resource.kind}
        subresources.append(
            {"subresource": sub, "responseKind": kind, "verbs": ["get", "patch", "update"]}
        )
    if subresources:
        entry["subresources"] = subresources
    return entry


def aggregated_discovery(registry: Registry, *, core: bool, version: str) -> dict[str, Any]:
    """The APIGroupDiscoveryList of ``/api`` (``core``) or ``/apis``."""
    groups = {"": ["v1"]} if core else registry.groups()
    items = []
    for name in sorted(groups):
        versions = []
        for group_version in groups[name]:
            resources = sorted(
                (r for r in registry.all() if r.group == name and group_version in r.versions),
                key=lambda r: r.plural,
            )
            versions.append(
                {
                    "version": group_version,
                    "resources": [_discovery_resource(r, group_version) for r in resources],
                    "freshness": "Current",
                }
            )
        items.append({"metadata": {"name": name, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
