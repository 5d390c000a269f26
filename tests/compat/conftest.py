"""A KopfExample CRD on the embedded API server, and Kopf-style handler files loaded into registries."""

from __future__ import annotations

import pathlib
import runpy
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs
import pytest

import trikopf
from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.structs import Resource
from trikopf.testing import wait_for_object

NAMESPACE = "default"
OPERATORS = pathlib.Path(__file__).parent / "operators"
EXAMPLES = pathlib.Path(__file__).parents[2] / "examples"

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "kopfexamples.kopf.dev"},
    "spec": {
        "group": "kopf.dev",
        "scope": "Namespaced",
        "names": {
            "kind": "KopfExample",
            "plural": "kopfexamples",
            "singular": "kopfexample",
            "shortNames": ["kex"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }
                },
            }
        ],
    },
}


def load_operator(filename: str) -> trikopf.OperatorRegistry:
    """Import a Kopf-style handler file (``OPERATORS/filename``) into a registry of its own.

    The file registers into the default registry, as Kopf's files do; the default registry is
    swapped for a fresh one while it is imported, and put back afterwards.
    """
    registry = trikopf.OperatorRegistry()
    previous = trikopf.get_default_registry()
    trikopf.set_default_registry(registry)
    try:
        runpy.run_path(str(OPERATORS / filename), run_name=f"compat_{pathlib.Path(filename).stem}")
    finally:
        trikopf.set_default_registry(previous)
    return registry


@attrs.define(eq=False)
class Cluster:
    server: ApiServer
    connection: ConnectionInfo
    client: ApiClient
    resource: Resource

    async def create(self, name: str = "obj", *, spec: Any = None, **meta: Any) -> Any:
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfExample",
            "metadata": {"name": name, **meta},
            "spec": spec if spec is not None else {"size": 1},
        }
        return await self.client.create(self.resource, body, namespace=NAMESPACE)

    async def patch(self, patch: dict[str, Any], name: str = "obj") -> Any:
        return await self.client.patch(self.resource, name, patch, namespace=NAMESPACE)

    async def delete(self, name: str = "obj") -> None:
        await self.client.delete(self.resource, name, namespace=NAMESPACE)

    async def wait_for(
        self, condition: Callable[[Any], bool], name: str = "obj", *, within: float = 30.0
    ) -> Any:
        return await wait_for_object(
            self.client, self.resource, name, condition, namespace=NAMESPACE, within=within
        )

    async def wait_until_gone(self, name: str = "obj", *, within: float = 30.0) -> None:
        await self.wait_for(lambda b: b is None, name, within=within)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        return [
            (e.get("type", ""), e.get("reason", ""), e.get("message", ""))
            for e in self.server.objects("events", NAMESPACE)
            if (e.get("involvedObject") or {}).get("name") == name
        ]

    async def wait_for_event(
        self, name: str, condition: Callable[[tuple[str, str, str]], bool], *, within: float = 30.0
    ) -> tuple[str, str, str]:
        """Wait (on the Events' watch, with a deadline) until an Event of ``name`` matches."""
        events = await self.client.resolve("events")
        with anyio.fail_after(within):
            while True:
                listing = await self.client.list(events, namespace=NAMESPACE)
                for found in self.events(name):
                    if condition(found):
                        return found
                async with self.client.watch(
                    events, namespace=NAMESPACE, resource_version=listing.resource_version
                ) as stream:
                    async for _ in stream:
                        break  # something changed: look again


def status_of(body: Any, key: str) -> Any:
    return (body or {}).get("status", {}).get(key)


@pytest.fixture
async def cluster(apiserver: ApiServer, kubeconfig_path: pathlib.Path) -> AsyncIterator[Cluster]:
    connection = load_kubeconfig(kubeconfig_path)
    async with open_client(connection) as client:
        crds = await client.resolve("customresourcedefinitions")
        await client.create(crds, CRD)
        with anyio.fail_after(10):
            resource = await client.resolve("kopfexamples.kopf.dev")
        yield Cluster(server=apiserver, connection=connection, client=client, resource=resource)
