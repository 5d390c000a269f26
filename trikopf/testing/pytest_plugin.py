"""pytest fixtures for testing operators on the embedded API server.

Enable them in a project's top-level ``conftest.py``::

    pytest_plugins = ["trikopf.testing.pytest_plugin"]

The fixtures are async (AnyIO's pytest plugin runs them; mark tests with ``@pytest.mark.anyio``
or let a conftest do it):

- ``trikopf_apiserver``: a fresh embedded API server for the test, stopped after it;
- ``trikopf_kubeconfig``: the path of a kubeconfig for that server (for kubectl, subprocesses);
- ``trikopf_connection``: a :class:`~trikopf.client.ConnectionInfo` for it (``operate``'s
  ``connection=``);
- ``trikopf_client``: an open :class:`~trikopf.client.ApiClient` for it;
- ``trikopf_apply``: a function ``await trikopf_apply("crd.yaml", "obj.yaml")`` that applies
  manifests as ``--apply`` does (CRDs first, waiting until they are served).
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from trikopf.apiserver import ApiServer, open_apiserver
from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.reactor.manifests import apply_manifests, load_manifests

__all__ = [
    "trikopf_apiserver",
    "trikopf_apply",
    "trikopf_client",
    "trikopf_connection",
    "trikopf_kubeconfig",
]

Apply = Callable[..., Awaitable[list[str]]]


@pytest.fixture
async def trikopf_apiserver() -> AsyncIterator[ApiServer]:
    """A fresh embedded API server (plain HTTP, no token) for one test."""
    async with open_apiserver() as server:
        yield server


@pytest.fixture
def trikopf_kubeconfig(
    trikopf_apiserver: ApiServer, tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    """A kubeconfig file for ``trikopf_apiserver``."""
    return trikopf_apiserver.write_kubeconfig(tmp_path_factory.mktemp("trikopf") / "kubeconfig")


@pytest.fixture
def trikopf_connection(trikopf_kubeconfig: pathlib.Path) -> ConnectionInfo:
    """How to reach ``trikopf_apiserver``: pass it to ``operate``/``open_operator``."""
    return load_kubeconfig(trikopf_kubeconfig)


@pytest.fixture
async def trikopf_client(trikopf_connection: ConnectionInfo) -> AsyncIterator[ApiClient]:
    """An API client of ``trikopf_apiserver``, closed after the test."""
    async with open_client(trikopf_connection) as client:
        yield client


@pytest.fixture
def trikopf_apply(trikopf_client: ApiClient) -> Apply:
    """Apply manifest files to ``trikopf_apiserver`` (CRDs first, waiting until served)."""

    async def apply(*paths: str | pathlib.Path) -> list[str]:
        return await apply_manifests(trikopf_client, load_manifests(paths))

    return apply
