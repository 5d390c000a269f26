"""Latency injection, measured on Trio's virtual clock (the injected delays take no real time)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from tests.clocks import virtual_time
from trikopf.apiserver import ApiServer

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


async def test_latency_delays_matching_requests(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apiserver.faults.add_latency(5.0, path="/api/v1/namespaces/default/*")
    started = anyio.current_time()
    assert (await client.get(CM)).status_code == 200
    assert anyio.current_time() - started >= 5.0
    started = anyio.current_time()
    assert (await client.get("/api/v1/namespaces")).status_code == 200
    assert anyio.current_time() - started < 5.0
    apiserver.faults.clear()
    started = anyio.current_time()
    await client.get(CM)
    assert anyio.current_time() - started < 5.0
