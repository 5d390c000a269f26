"""Fixtures for the embedded API server's raw-HTTP tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from trikopf.apiserver import ApiServer


@pytest.fixture
async def client(apiserver: ApiServer) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client pointed at the ``apiserver`` fixture."""
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=10) as client:
        yield client
