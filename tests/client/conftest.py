"""Fixtures of the client tests: a client on the embedded API server and a test CRD."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests import kopfexample
from trikopf.client import ApiClient, ClientSettings, ConnectionInfo, open_client
from trikopf.structs import Resource

FAST = ClientSettings(backoff_base=0.01, backoff_max=0.05, rate_limit=float("inf"))


def crd(
    group: str = "kopf.dev", plural: str = "kopfexamples", kind: str = "KopfExample"
) -> dict[str, Any]:
    return kopfexample.crd(
        group=group,
        plural=plural,
        kind=kind,
        short_names=("kex",) if group == "kopf.dev" else (),
        categories=("kopf",),
    )


@pytest.fixture
async def client(connection: ConnectionInfo) -> AsyncIterator[ApiClient]:
    """A client from the embedded server's kubeconfig, retrying fast, not rate-limited."""
    async with open_client(connection, settings=FAST) as client:
        yield client


@pytest.fixture
async def kex(client: ApiClient) -> Resource:
    """The KopfExample resource, its CRD created through the client."""
    return await kopfexample.create_kopfexamples(client, crd())


def kex_body(name: str, **spec: Any) -> dict[str, Any]:
    return kopfexample.body(name, spec, labels={"app": "test"})
