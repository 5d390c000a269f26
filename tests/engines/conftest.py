"""A KopfExample CRD on the embedded API server, and an operator runner for engine tests."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs
import pytest

import trikopf
from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource
from trikopf.testing import RunningOperator, open_operator, wait_for_object

NAMESPACE = "default"
FINALIZER = "trikopf.dev/finalizer"

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


def quiet_settings() -> OperatorSettings:
    """Settings for tests: no Events posted (fewer requests), prompt rounds."""
    s = OperatorSettings()
    s.posting.enabled = False
    s.processing.batch_window = 0.0
    return s


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
        self, condition: Callable[[Any], bool], name: str = "obj", *, within: float = 60.0
    ) -> Any:
        return await wait_for_object(
            self.client, self.resource, name, condition, namespace=NAMESPACE, within=within
        )

    async def wait_until_gone(self, name: str = "obj", *, within: float = 60.0) -> None:
        await self.wait_for(lambda b: b is None, name, within=within)

    def operator(
        self,
        registry: trikopf.OperatorRegistry,
        *,
        settings: OperatorSettings | None = None,
        memo: Any = None,
    ) -> contextlib.AbstractAsyncContextManager[RunningOperator]:
        return open_operator(
            registry,
            connection=self.connection,
            settings=settings if settings is not None else quiet_settings(),
            namespaces=[NAMESPACE],
            memo=memo,
        )


def has_finalizer(body: Any) -> bool:
    return body is not None and FINALIZER in (body["metadata"].get("finalizers") or ())


@pytest.fixture
async def cluster(apiserver: ApiServer, kubeconfig_path: pathlib.Path) -> AsyncIterator[Cluster]:
    connection = load_kubeconfig(kubeconfig_path)
    async with open_client(connection) as client:
        crds = await client.resolve("customresourcedefinitions")
        await client.create(crds, CRD)
        with anyio.fail_after(10):
            resource = await client.resolve("kopfexamples.kopf.dev")
        yield Cluster(server=apiserver, connection=connection, client=client, resource=resource)


class Moments:
    """Records named moments on the event loop's clock, and lets a test wait for them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []
        self._changed = anyio.Event()

    def mark(self, name: str) -> None:
        self.seen.append((name, anyio.current_time()))
        self._changed.set()
        self._changed = anyio.Event()

    def times(self, name: str) -> list[float]:
        return [t for n, t in self.seen if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]

    async def wait_for(self, name: str, count: int = 1, *, within: float = 120.0) -> float:
        with anyio.fail_after(within):
            while len(self.times(name)) < count:
                await self._changed.wait()
        return self.times(name)[count - 1]
