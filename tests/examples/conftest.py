"""Fixtures for running the examples on the shared ``apiserver`` fixture."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest

from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.structs import Resource

EXAMPLES = pathlib.Path(__file__).parent.parent.parent / "examples"


@pytest.fixture
def connection(kubeconfig_path: pathlib.Path) -> ConnectionInfo:
    return load_kubeconfig(kubeconfig_path)


@pytest.fixture
async def client(connection: ConnectionInfo) -> AsyncIterator[ApiClient]:
    async with open_client(connection) as api:
        yield api


@pytest.fixture
async def kopfexamples(client: ApiClient) -> Resource:
    """The KopfExample CRD applied and served; returns its resource."""
    await apply_manifests(client, load_manifests([EXAMPLES / "crd.yaml"]))
    return await client.resolve("kopfexamples")
