"""Shared fixtures: every async test runs on Trio first, then on asyncio."""

from __future__ import annotations

import inspect
import pathlib
from collections.abc import AsyncIterator

import pytest

from trikopf.apiserver import ApiServer, open_apiserver
from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.structs import Resource

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


@pytest.fixture(params=[pytest.param("trio", id="trio"), pytest.param("asyncio", id="asyncio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Mark coroutine tests while they are collected, so that the backend parametrisation
    # combines with their own @pytest.mark.parametrize (marking them later loses it).
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.usefixtures("anyio_backend")(pytest.mark.anyio(obj))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Coroutine tests need no explicit marker: AnyIO's plugin runs them on both backends.
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture
async def apiserver(request: pytest.FixtureRequest) -> AsyncIterator[ApiServer]:
    """A fresh embedded API server per test (http, no token), stopped after the test.

    ``@pytest.mark.apiserver(bookmark_interval=0.1, ...)`` passes options to
    ``open_apiserver``.
    """
    marker = request.node.get_closest_marker("apiserver")
    options = dict(marker.kwargs) if marker is not None else {}
    async with open_apiserver(**options) as server:
        yield server


@pytest.fixture
def kubeconfig_path(apiserver: ApiServer, tmp_path: pathlib.Path) -> pathlib.Path:
    """The ``apiserver`` fixture's kubeconfig, written to the test's temporary folder."""
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def connection(kubeconfig_path: pathlib.Path) -> ConnectionInfo:
    """How to reach the ``apiserver`` fixture: its kubeconfig, loaded."""
    return load_kubeconfig(kubeconfig_path)


@pytest.fixture
async def client(connection: ConnectionInfo) -> AsyncIterator[ApiClient]:
    """An API client of the ``apiserver`` fixture (default settings), closed after the test."""
    async with open_client(connection) as api:
        yield api


@pytest.fixture
async def kopfexamples(client: ApiClient) -> Resource:
    """The examples' KopfExample CRD (``examples/crd.yaml``) applied and served; its resource."""
    await apply_manifests(client, load_manifests([EXAMPLES / "crd.yaml"]))
    return await client.resolve("kopfexamples")
