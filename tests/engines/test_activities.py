"""Startup, cleanup and login handlers around a real operator, on Trio's virtual clock."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import trikopf
from tests.clocks import virtual_time
from tests.engines.conftest import CRD, Cluster, quiet_settings
from trikopf.apiserver import open_apiserver
from trikopf.client import ConnectionInfo, open_client
from trikopf.testing import open_operator, wait_for_object


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


def watches(cluster: Cluster) -> int:
    return sum(1 for r in cluster.server.requests if r.is_watch)


async def test_startup_runs_before_any_watch_and_its_memo_reaches_handlers_and_cleanup(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    seen: list[Any] = []

    @trikopf.on.startup(registry=registry)
    async def connect(memo: trikopf.Memo, settings: trikopf.OperatorSettings, **_: Any) -> None:
        seen.append(("startup", watches(cluster)))
        memo.pool = "connected"
        settings.persistence.finalizer = "example.com/custom"

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(memo: trikopf.Memo, **_: Any) -> str:
        seen.append(("create", memo.pool))
        return "done"

    @trikopf.on.cleanup(registry=registry)
    async def disconnect(memo: trikopf.Memo, **_: Any) -> None:
        seen.append(("cleanup", memo.pool))

    async with cluster.operator(registry):
        await cluster.create()
        await cluster.wait_for(lambda b: b is not None and "create_fn" in b.get("status", {}))
        assert seen[-1] == ("create", "connected")

    assert seen == [("startup", 0), ("create", "connected"), ("cleanup", "connected")]


async def test_failing_startup_handler_aborts_the_operator_with_a_clear_message(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.startup(registry=registry)
    async def broken(**_: Any) -> None:
        raise RuntimeError("the database is unreachable")

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        pass

    with pytest.raises(trikopf.StartupError) as caught:
        async with cluster.operator(registry):
            pytest.fail("the operator must not start")

    message = str(caught.value)
    assert "broken" in message
    assert "the database is unreachable" in message
    assert watches(cluster) == 0


async def test_startup_handler_is_retried_after_a_temporary_error(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    attempts: list[float] = []

    @trikopf.on.startup(registry=registry)
    async def warming_up(retry: int, **_: Any) -> None:
        attempts.append(anyio.current_time())
        if retry < 2:
            raise trikopf.TemporaryError("not ready", delay=5)

    async with cluster.operator(registry):
        pass

    assert [round(b - a) for a, b in itertools.pairwise(attempts)] == [5, 5]


async def test_cleanup_that_hangs_is_cut_off_at_its_timeout(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    cancelled: list[float] = []

    @trikopf.on.cleanup(registry=registry)
    async def hanging(**_: Any) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(anyio.current_time())
            raise

    @trikopf.on.event("kopfexamples", registry=registry)
    async def event_fn(**_: Any) -> None:
        pass

    settings = quiet_settings()
    settings.background.cleanup_timeout = 3
    async with cluster.operator(registry, settings=settings) as operator:
        stop_at = anyio.current_time()
        operator.stop()
        await operator.stopped.wait()
        stopped_at = anyio.current_time()

    assert len(cancelled) == 1
    assert 3 <= cancelled[0] - stop_at < 4
    assert stopped_at - stop_at < 6


async def test_login_handler_credentials_are_used_and_asked_again_after_a_401() -> None:
    registry = trikopf.OperatorRegistry()
    logins: list[ConnectionInfo | None] = []

    async with open_apiserver(token="s3cret") as server:

        @trikopf.on.login(registry=registry)
        async def login_fn(previous: ConnectionInfo | None, **_: Any) -> ConnectionInfo:
            logins.append(previous)
            return ConnectionInfo(server=server.url, token="s3cret")

        @trikopf.on.create("kopfexamples", registry=registry)
        async def create_fn(**_: Any) -> str:
            return "created"

        direct = ConnectionInfo(server=server.url, token="s3cret")
        async with open_client(direct) as client:
            crds = await client.resolve("customresourcedefinitions")
            await client.create(crds, CRD)
            resource = await client.resolve("kopfexamples.kopf.dev")
            async with open_operator(registry, settings=quiet_settings(), namespaces=["default"]):
                assert logins == [None]
                server.faults.fail_next(status=401, method="PATCH", path="*/kopfexamples/*")
                body = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample"}
                await client.create(
                    resource, {**body, "metadata": {"name": "obj"}}, namespace="default"
                )
                # The operator's PATCH gets a 401: it logs in again and sends it once more.
                await wait_for_object(
                    client,
                    resource,
                    "obj",
                    lambda b: b is not None and b.get("status", {}).get("create_fn") == "created",
                    namespace="default",
                    within=60,
                )

    assert len(logins) == 2
    assert logins[0] is None
    assert logins[1] is not None
    assert logins[1].token == "s3cret"
