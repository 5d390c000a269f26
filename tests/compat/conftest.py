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
from tests.kopfexample import NAMESPACE, open_cluster
from tests.kopfexample import Cluster as KopfExampleCluster
from tests.registries import fresh_default_registry
from trikopf.apiserver import ApiServer

OPERATORS = pathlib.Path(__file__).parent / "operators"
EXAMPLES = pathlib.Path(__file__).parents[2] / "examples"


def load_operator(filename: str) -> trikopf.OperatorRegistry:
    """Import a Kopf-style handler file (``OPERATORS/filename``) into a registry of its own.

    The file registers into the default registry, as Kopf's files do; the default registry is
    swapped for a fresh one while it is imported, and put back afterwards.
    """
    with fresh_default_registry() as registry:
        runpy.run_path(str(OPERATORS / filename), run_name=f"compat_{pathlib.Path(filename).stem}")
    return registry


@attrs.define(eq=False)
class Cluster(KopfExampleCluster):
    """The shared cluster handle, with the Events of an object."""

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
    async with open_cluster(Cluster, apiserver, kubeconfig_path) as cluster:
        yield cluster
