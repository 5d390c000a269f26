"""Shared fixtures: every async test runs on Trio first, then on asyncio."""

from __future__ import annotations

import inspect

import pytest


@pytest.fixture(params=[pytest.param("trio", id="trio"), pytest.param("asyncio", id="asyncio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Coroutine tests need no explicit marker: AnyIO's plugin runs them on both backends.
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.add_marker(pytest.mark.anyio)
