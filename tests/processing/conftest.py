"""A harness that runs processing rounds against the embedded API server, as the reactor would.

It fetches the object over HTTP, hands it to :func:`process_event` as a watch event, and honours
the outcome's delay the way the reactor does (sleeping it, which is instant on a mock clock).
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import attrs
import pytest

import trikopf
from tests.kopfexample import NAMESPACE, body, crd, create_kopfexamples
from trikopf.actions.posting import EventPoster
from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, NotFound, load_kubeconfig, open_client
from trikopf.processing import (
    ObjectState,
    ProcessingOutcome,
    prepare_raw_handler,
    process_event,
)
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource, WatchEvent


@attrs.define(eq=False)
class Harness:
    server: ApiServer
    client: ApiClient
    resource: Resource
    registry: trikopf.OperatorRegistry = attrs.field(factory=trikopf.OperatorRegistry)
    settings: OperatorSettings = attrs.field(factory=OperatorSettings)
    memo: trikopf.Memo = attrs.field(factory=trikopf.Memo)
    poster: EventPoster = attrs.field(init=False)
    states: dict[str, ObjectState] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self.poster = EventPoster(client=self.client, settings=self.settings)

    async def create(self, name: str = "obj", spec: Any = None, **meta: Any) -> dict[str, Any]:
        return await self.client.create(
            self.resource, body(name, spec, **meta), namespace=NAMESPACE
        )

    async def get(self, name: str = "obj") -> dict[str, Any]:
        return await self.client.get(self.resource, name, namespace=NAMESPACE)

    async def patch(self, patch: dict[str, Any], name: str = "obj") -> dict[str, Any]:
        return await self.client.patch(self.resource, name, patch, namespace=NAMESPACE)

    async def delete(self, name: str = "obj") -> None:
        await self.client.delete(self.resource, name, namespace=NAMESPACE)

    def forget(self, name: str = "obj") -> None:
        """Forget the per-object memory, as a restarted operator would start without it."""
        self.states.pop(name, None)

    async def round(
        self, name: str = "obj", *, body: dict[str, Any] | None = None, type: str = "MODIFIED"
    ) -> ProcessingOutcome:
        """One round for the object as it is now stored (or for ``body``, as a stale event)."""
        if body is None:
            try:
                body = await self.get(name)
            except NotFound:
                return ProcessingOutcome(gone=True)
        state = self.states.setdefault(name, ObjectState())
        return await process_event(
            registry=self.registry,
            settings=self.settings,
            resource=self.resource,
            event=WatchEvent(type=type, object=body),
            client=self.client,
            memo=self.memo,
            poster=self.poster,
            state=state,
        )

    def raw_handler(self) -> Callable[[WatchEvent], Awaitable[None]]:
        """The on.event path for this resource, as the reactor prepares it for a raw watch."""
        return prepare_raw_handler(
            registry=self.registry,
            settings=self.settings,
            resource=self.resource,
            client=self.client,
            memo=self.memo,
            poster=self.poster,
        )

    async def settle(self, name: str = "obj", *, max_rounds: int = 50) -> int:
        """Run rounds until one asks for none; sleep the requested delays. Returns the rounds."""
        for count in range(1, max_rounds + 1):
            outcome = await self.round(name)
            if outcome.delay is None:
                return count
            await anyio.sleep(outcome.delay)
        raise AssertionError(f"the object did not settle in {max_rounds} rounds")

    def patches(self, name: str = "obj") -> int:
        return len(self.server.requests.matching("PATCH", f"*/kopfexamples/{name}*"))

    async def events(self, name: str = "obj") -> list[tuple[str, str, str]]:
        await self.poster.flush()
        found = [
            (e.get("type"), e.get("reason"), e.get("message"))
            for e in self.server.objects("events", NAMESPACE)
            if (e.get("involvedObject") or {}).get("name") == name
        ]
        return found


async def _start(
    server: ApiServer, kubeconfig: pathlib.Path, *, status: bool
) -> AsyncIterator[Harness]:
    async with open_client(load_kubeconfig(kubeconfig)) as client:
        resource = await create_kopfexamples(client, crd(status_subresource=status))
        yield Harness(server=server, client=client, resource=resource)


@pytest.fixture
async def harness(apiserver: ApiServer, kubeconfig_path: pathlib.Path) -> AsyncIterator[Harness]:
    """A harness on a KopfExample CRD without a status subresource."""
    async for h in _start(apiserver, kubeconfig_path, status=False):
        yield h


@pytest.fixture
async def status_harness(
    apiserver: ApiServer, kubeconfig_path: pathlib.Path
) -> AsyncIterator[Harness]:
    """A harness on a KopfExample CRD with a status subresource."""
    async for h in _start(apiserver, kubeconfig_path, status=True):
        yield h
