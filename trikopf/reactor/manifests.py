"""Applying YAML manifests before the operator starts (``--apply``): CRDs first, then the rest.

A small ``kubectl apply`` for the quick start and for tests: each document is created, or, when
it exists already, merge-patched with the manifest. CustomResourceDefinitions and Namespaces go
first, and the operator waits until the API server serves each new CRD's resource, so that the
objects of that resource in the same files can be created right after.
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import yaml

from trikopf.client import ApiClient
from trikopf.client.errors import AlreadyExists
from trikopf.reactor.discovery import StartupError
from trikopf.structs import Resource

__all__ = ["apply_manifests", "load_manifests"]

logger = logging.getLogger("trikopf.manifests")

_FIRST = ("CustomResourceDefinition", "Namespace")


def load_manifests(paths: Iterable[str | pathlib.Path]) -> list[dict[str, Any]]:
    """Read every YAML document of ``paths`` (``kind: List`` expanded); raise StartupError."""
    documents: list[dict[str, Any]] = []
    for path in paths:
        try:
            text = pathlib.Path(path).read_text(encoding="utf-8")
            loaded = list(yaml.safe_load_all(text))
        except OSError as exc:
            raise StartupError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise StartupError(f"the manifest {path} is not valid YAML: {exc}") from None
        for doc in loaded:
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise StartupError(f"the manifest {path} has a document without kind/apiVersion")
            if doc["kind"] == "List" or (
                doc["kind"].endswith("List") and isinstance(doc.get("items"), list)
            ):
                documents.extend(doc.get("items") or [])
            else:
                documents.append(doc)
    return documents


def _find(served: Sequence[Resource], api_version: str, kind: str) -> Resource | None:
    group, _, version = api_version.rpartition("/")
    for resource in served:
        if resource.group == group and resource.version == version and resource.kind == kind:
            return resource
    return None


def _crd_key(doc: dict[str, Any]) -> tuple[str, str]:
    spec = doc.get("spec") or {}
    return str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", ""))


async def _apply_one(client: ApiClient, resource: Resource, doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise StartupError(f"a {doc['kind']} manifest has no metadata.name")
    namespace = (meta.get("namespace") or client_namespace(client)) if resource.namespaced else None
    try:
        await client.create(resource, doc, namespace=namespace)
        verb = "created"
    except AlreadyExists:
        await client.patch(resource, name, doc, namespace=namespace)
        verb = "configured"
    where = f" in {namespace}" if namespace else ""
    return f"{resource.kind.lower()}/{name}{where} {verb}"


def client_namespace(client: ApiClient) -> str:
    """The namespace of the client's context (``default`` unless the kubeconfig says other)."""
    connection = getattr(client, "connection", None)
    return str(getattr(connection, "namespace", None) or "default")


async def apply_manifests(
    client: ApiClient,
    documents: Sequence[dict[str, Any]],
    *,
    served_within: float = 30.0,
) -> list[str]:
    """Create or update ``documents`` in order, CRDs and Namespaces first; return what was done.

    Waits (up to ``served_within`` seconds) until every applied CRD's resource is served. Starts no
    tasks; returns when all is applied; raises :class:`StartupError` with a clear message.
    """
    first = [d for d in documents if d["kind"] in _FIRST]
    rest = [d for d in documents if d["kind"] not in _FIRST]
    done: list[str] = []
    served = await client.resources(refresh=True)
    crds: list[tuple[str, str]] = []
    for doc in first:
        resource = _find(served, doc["apiVersion"], doc["kind"])
        if resource is None:
            raise StartupError(f"the cluster does not serve {doc['apiVersion']} {doc['kind']}")
        done.append(await _apply_one(client, resource, doc))
        if doc["kind"] == "CustomResourceDefinition":
            crds.append(_crd_key(doc))
    if crds:
        served = await _wait_until_served(client, crds, within=served_within)
    for doc in rest:
        resource = _find(served, doc["apiVersion"], doc["kind"])
        if resource is None:
            raise StartupError(
                f"the cluster does not serve {doc['apiVersion']} {doc['kind']} "
                f"(for {doc.get('metadata', {}).get('name')!r}); is its CRD applied?"
            )
        done.append(await _apply_one(client, resource, doc))
    for line in done:
        logger.info("Applied: %s.", line)
    return done


async def _wait_until_served(
    client: ApiClient, crds: Sequence[tuple[str, str]], *, within: float
) -> list[Resource]:
    # Discovery has no stream to wait on: re-check it with a growing pause, bounded overall.
    pause = 0.02
    with anyio.move_on_after(within):
        while True:
            served = await client.resources(refresh=True)
            have = {(r.group, r.plural) for r in served}
            if all(key in have for key in crds):
                return served
            await anyio.sleep(pause)
            pause = min(pause * 2, 1.0)
    missing = ", ".join(f"{p}.{g}" for g, p in crds)
    raise StartupError(f"the CRDs were applied but {missing} is not served after {within:.0f}s")
