"""Fixtures for the embedded API server's raw-HTTP and kubectl tests."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.apiserver.kubectl_support import KUBECTL_VERSIONS, Kubectl
from trikopf.apiserver import ApiServer


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client pointed at the ``apiserver`` fixture."""
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=10) as client:
        yield client


@pytest.fixture(params=KUBECTL_VERSIONS)
def kubectl(
    request: pytest.FixtureRequest, apiserver: ApiServer, tmp_path: pathlib.Path
) -> Kubectl:
    """Each kubectl binary of ``KUBECTL_VERSIONS``, configured for the ``apiserver`` fixture."""
    return Kubectl.for_server(request.param, apiserver, tmp_path)


@pytest.fixture
async def example(kubectl: Kubectl) -> None:
    """The KopfExample CRD and the example object, applied with ``kubectl``."""
    await kubectl.apply_example()
