"""The KopfExample resource that the operator-level tests run on, served by the embedded API server.

One CRD builder, one object body, and a small ``Cluster`` handle with the requests those tests
repeat; the folders' conftests build their fixtures from these.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import attrs

from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.structs import Resource
from trikopf.testing import wait_for_object

NAMESPACE = "default"


def crd(
    *,
    group: str = "kopf.dev",
    plural: str = "kopfexamples",
    kind: str = "KopfExample",
    status_subresource: bool = True,
    short_names: tuple[str, ...] = ("kex",),
    categories: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A namespaced CRD with one served version ``v1`` that keeps unknown fields."""
    names: dict[str, Any] = {
        "kind": kind,
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": list(short_names),
    }
    if categories:
        names["categories"] = list(categories)
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    if status_subresource:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced", "names": names, "versions": [version]},
    }


def body(name: str = "obj", spec: Any = None, **meta: Any) -> dict[str, Any]:
    """A KopfExample object; the spec is ``{"size": 1}`` unless given."""
    return {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": name, **meta},
        "spec": spec if spec is not None else {"size": 1},
    }


def kex(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    """A KopfExample in ``namespace`` with exactly this spec (empty unless given)."""
    return body(name, spec, namespace=namespace)


async def create_kopfexamples(client: ApiClient, definition: dict[str, Any]) -> Resource:
    """Create the CRD through ``client`` and wait (10 s at most) until it is served."""
    crds = await client.resolve("customresourcedefinitions")
    await client.create(crds, definition)
    with anyio.fail_after(10):
        spec = definition["spec"]
        return await client.resolve(f"{spec['names']['plural']}.{spec['group']}")


@attrs.define(eq=False)
class Cluster:
    """The embedded server with the KopfExample CRD, and a client for it.

    Waits give up after ``patience`` seconds unless a call says ``within=``.
    """

    server: ApiServer
    connection: ConnectionInfo
    client: ApiClient
    resource: Resource
    patience: float = 30.0

    async def create(self, name: str = "obj", *, spec: Any = None, **meta: Any) -> Any:
        return await self.client.create(
            self.resource, body(name, spec, **meta), namespace=NAMESPACE
        )

    async def patch(self, patch: dict[str, Any], name: str = "obj") -> Any:
        return await self.client.patch(self.resource, name, patch, namespace=NAMESPACE)

    async def delete(self, name: str = "obj") -> None:
        await self.client.delete(self.resource, name, namespace=NAMESPACE)

    async def wait_for(
        self, condition: Callable[[Any], bool], name: str = "obj", *, within: float | None = None
    ) -> Any:
        return await wait_for_object(
            self.client,
            self.resource,
            name,
            condition,
            namespace=NAMESPACE,
            within=self.patience if within is None else within,
        )

    async def wait_until_gone(self, name: str = "obj", *, within: float | None = None) -> None:
        await self.wait_for(lambda b: b is None, name, within=within)


C = TypeVar("C", bound=Cluster)


@asynccontextmanager
async def open_cluster(
    cls: type[C], apiserver: ApiServer, kubeconfig_path: pathlib.Path, **options: Any
) -> AsyncIterator[C]:
    """Create the KopfExample CRD on ``apiserver``; yield a ``cls`` whose client closes after."""
    connection = load_kubeconfig(kubeconfig_path)
    async with open_client(connection) as client:
        resource = await create_kopfexamples(client, crd())
        yield cls(
            server=apiserver, connection=connection, client=client, resource=resource, **options
        )
