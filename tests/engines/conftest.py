"""A KopfExample CRD on the embedded API server, and an operator runner for engine tests."""

from __future__ import annotations

import contextlib
import math
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import pytest

import trikopf
from tests.kopfexample import NAMESPACE, crd, open_cluster
from tests.kopfexample import Cluster as KopfExampleCluster
from trikopf.apiserver import ApiServer
from trikopf.settings import OperatorSettings
from trikopf.testing import RunningOperator, open_operator

FINALIZER = "trikopf.dev/finalizer"

CRD: dict[str, Any] = crd()


def quiet_settings() -> OperatorSettings:
    """Settings for tests: no Events posted (fewer requests), prompt rounds."""
    s = OperatorSettings()
    s.posting.enabled = False
    s.processing.batch_window = 0.0
    return s


@attrs.define(eq=False)
class Cluster(KopfExampleCluster):
    """The shared cluster handle (waits up to a minute), with an operator runner on it."""

    patience: float = 60.0

    def operator(
        self,
        registry: trikopf.OperatorRegistry,
        *,
        settings: OperatorSettings | None = None,
        memo: Any = None,
    ) -> contextlib.AbstractAsyncContextManager[RunningOperator]:
        return open_operator(
            registry,
            connection=self.connection,
            settings=settings if settings is not None else quiet_settings(),
            namespaces=[NAMESPACE],
            memo=memo,
        )


def has_finalizer(body: Any) -> bool:
    return body is not None and FINALIZER in (body["metadata"].get("finalizers") or ())


@pytest.fixture
async def cluster(apiserver: ApiServer, kubeconfig_path: pathlib.Path) -> AsyncIterator[Cluster]:
    async with open_cluster(Cluster, apiserver, kubeconfig_path) as cluster:
        yield cluster


class Moments:
    """Records named moments on the event loop's clock, and lets a test wait for them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []
        self._changed = anyio.Event()

    def mark(self, name: str) -> None:
        self.seen.append((name, anyio.current_time()))
        self._changed.set()
        self._changed = anyio.Event()

    async def sleep_until_cancelled(self, seconds: float = math.inf) -> None:
        """Sleep (forever unless told), marking ``"cancelled"`` if the sleep is cancelled."""
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            self.mark("cancelled")
            raise

    def times(self, name: str) -> list[float]:
        return [t for n, t in self.seen if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.seen]

    async def wait_for(self, name: str, count: int = 1, *, within: float = 120.0) -> float:
        with anyio.fail_after(within):
            while len(self.times(name)) < count:
                await self._changed.wait()
        return self.times(name)[count - 1]
