"""Watchers follow CRDs and namespaces as they come and go; the object scope seam for engines."""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import anyio
import pytest

import trikopf
from tests.kopfexample import kex
from trikopf.client import ApiClient, ConnectionInfo
from trikopf.reactor import ObjectScope
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.structs import Resource, WatchEvent
from trikopf.testing import open_operator, wait_for_object

EXAMPLES = pathlib.Path(__file__).parent.parent.parent / "examples"


def fast_settings() -> trikopf.OperatorSettings:
    settings = trikopf.OperatorSettings()
    settings.processing.batch_window = 0.01
    settings.processing.idle_timeout = 0.2
    settings.posting.enabled = False
    return settings


class LogWaiter(logging.Handler):
    """Collects trikopf's log lines and wakes waiters when a line arrives (no polling)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.arrived = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self.arrived.set()
        self.arrived = anyio.Event()

    async def wait_for(self, text: str, *, within: float = 10.0) -> None:
        with anyio.fail_after(within):
            while not any(text in line for line in self.lines):
                await self.arrived.wait()


@pytest.fixture
def log() -> Any:
    waiter = LogWaiter()
    logger = logging.getLogger("trikopf")
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(waiter)
    yield waiter
    logger.removeHandler(waiter)
    logger.setLevel(previous)


def handled(body: Any) -> bool:
    return body is not None and "create_fn" in (body.get("status") or {})


async def test_deleted_crd_stops_its_watcher_and_a_recreated_one_is_watched_again(
    connection: ConnectionInfo,
    client: ApiClient,
    kopfexamples: Resource,
    log: LogWaiter,
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "ok"

    crds = await client.resolve("customresourcedefinitions")
    async with open_operator(registry, connection=connection, settings=fast_settings()):
        await client.create(kopfexamples, kex("first"))
        await wait_for_object(client, kopfexamples, "first", handled, namespace="default")

        await client.delete(crds, "kopfexamples.kopf.dev")
        await log.wait_for("Stopping the watch of kopfexamples.kopf.dev")

        await apply_manifests(client, load_manifests([EXAMPLES / "crd.yaml"]))
        resource = await client.resolve("kopfexamples")
        await client.create(resource, kex("second"))
        await wait_for_object(client, resource, "second", handled, namespace="default")


async def test_deleted_namespace_stops_its_watcher(
    connection: ConnectionInfo,
    client: ApiClient,
    kopfexamples: Resource,
    log: LogWaiter,
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "ok"

    namespaces = await client.resolve("namespaces")
    await client.create(
        namespaces, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    )
    async with open_operator(
        registry, connection=connection, settings=fast_settings(), namespaces=["team-*"]
    ):
        assert any("Watching kopfexamples.kopf.dev in team-a" in line for line in log.lines)
        await client.delete(namespaces, "team-a")
        await wait_for_object(client, namespaces, "team-a", lambda b: b is None)
        await log.wait_for("Stopping the watch of kopfexamples.kopf.dev in team-a")


async def test_hook_tasks_live_in_the_object_scope_and_end_with_the_object(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    started = anyio.Event()
    ended = anyio.Event()
    spawned: set[str] = set()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "ok"

    async def daemon_like() -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            ended.set()

    async def hook(
        *, resource: Resource, event: WatchEvent, state: Any, scope: ObjectScope
    ) -> None:
        # What an engine does: start the object's long-running task once, in its scope.
        if event.type != "DELETED" and scope.uid not in spawned:
            spawned.add(scope.uid)
            scope.start_soon(daemon_like)

    settings = fast_settings()
    async with open_operator(registry, connection=connection, settings=settings, hooks=[hook]):
        await client.create(kopfexamples, kex("with-daemon"))
        with anyio.fail_after(10):
            await started.wait()
        await wait_for_object(client, kopfexamples, "with-daemon", handled, namespace="default")
        # Far past the idle timeout, the task still runs: it holds the object's worker.
        with anyio.move_on_after(settings.processing.idle_timeout * 5):
            await ended.wait()
        assert not ended.is_set()
        await client.delete(kopfexamples, "with-daemon", namespace="default")
        with anyio.fail_after(10):
            await ended.wait()


async def test_watcher_added_later_retries_a_failing_first_list_instead_of_stopping_the_operator(
    apiserver: Any, connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "ok"

    namespaces = await client.resolve("namespaces")
    async with open_operator(
        registry, connection=connection, settings=fast_settings(), namespaces=["team-*"]
    ):
        apiserver.faults.fail_next(
            2,
            status=403,
            method="GET",
            path="/apis/kopf.dev/v1/namespaces/team-b/kopfexamples",
            watch=False,
        )
        await client.create(
            namespaces, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-b"}}
        )
        await client.create(kopfexamples, kex("late", namespace="team-b"))
        await wait_for_object(client, kopfexamples, "late", handled, namespace="team-b")
    forbidden = [
        r
        for r in apiserver.requests.matching(
            "GET", "/apis/kopf.dev/v1/namespaces/team-b/kopfexamples"
        )
        if r.status == 403
    ]
    assert len(forbidden) == 2
