"""Retries, rate limiting, re-authentication and stalled watches, on Trio's virtual clock.

The embedded API server runs in the same Trio run, so a Retry-After of seconds or an
inactivity timeout takes no wall time, and the virtual clock shows what the client waited.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import anyio
import pytest
import trio
import trio.testing

from tests.client.conftest import FAST, kex_body
from tests.clocks import virtual_time
from trikopf.apiserver import ApiServer
from trikopf.client import (
    ApiClient,
    ApiConnectionError,
    ApiTimeout,
    ClientSettings,
    ConnectionInfo,
    ServerError,
    TooManyRequests,
    Unauthorized,
    WatchStalled,
    open_client,
)
from trikopf.structs import Resource


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


def attempts(apiserver: ApiServer, method: str, fragment: str) -> list[float]:
    """The server's (wall-clock) times of the matching requests it answered."""
    return [r.time for r in apiserver.requests if r.method == method and fragment in r.path]


async def test_a_429_burst_is_retried_after_the_servers_retry_after(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    await client.create(kex, kex_body("a"), namespace="default")
    apiserver.faults.fail_next(3, status=429, retry_after=7, method="GET", path="*/kopfexamples/a")
    started = trio.current_time()
    got = await client.get(kex, "a", "default")
    waited = trio.current_time() - started
    assert got["metadata"]["name"] == "a"
    assert waited >= 3 * 7  # each of the three 429s was obeyed
    assert waited < 3 * 7 + 3 * FAST.backoff_jitter * FAST.backoff_base + 1
    assert len(attempts(apiserver, "GET", "/kopfexamples/a")) == 4


async def test_a_429_longer_than_the_retry_budget_is_surfaced_at_once(
    apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    settings = ClientSettings(retry_timeout=10, rate_limit=math.inf)
    apiserver.faults.fail_next(1, status=429, retry_after=60, path="/api/v1/namespaces/default")
    async with open_client(ConnectionInfo(server=apiserver.url), settings=settings) as client:
        ns = await client.resolve("namespaces")
        started = trio.current_time()
        with pytest.raises(TooManyRequests) as info:
            await client.get(ns, "default")
        assert trio.current_time() - started < 1
    assert info.value.retry_after == 60


async def test_server_errors_are_retried_with_backoff(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    await client.create(kex, kex_body("a"), namespace="default")
    apiserver.faults.fail_next(2, status=503, method="GET", path="*/kopfexamples/a")
    started = trio.current_time()
    await client.get(kex, "a", "default")
    waited = trio.current_time() - started
    assert len(attempts(apiserver, "GET", "/kopfexamples/a")) == 3
    # Backoff once then twice the base, each shortened by at most the jitter fraction.
    assert waited >= 3 * FAST.backoff_base * (1 - FAST.backoff_jitter)
    assert waited <= 3 * FAST.backoff_base + 0.5


async def test_server_errors_are_surfaced_after_the_last_attempt(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    apiserver.faults.fail_next(100, status=500, method="GET", path="*/kopfexamples/a")
    with pytest.raises(ServerError) as info:
        await client.get(kex, "a", "default")
    assert info.value.code == 500
    assert len(attempts(apiserver, "GET", "/kopfexamples/a")) == FAST.retry_attempts


async def test_a_create_is_not_repeated_after_an_internal_error(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    apiserver.faults.fail_next(1, status=500, method="POST", path="*/kopfexamples")
    with pytest.raises(ServerError):
        await client.create(kex, kex_body("a"), namespace="default")
    assert len(attempts(apiserver, "POST", "/kopfexamples")) == 1


async def test_unreachable_server_raises_a_connection_error_after_retries() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    async with open_client(ConnectionInfo(server=f"http://127.0.0.1:{port}"), settings=FAST) as c:
        with pytest.raises(ApiConnectionError, match="ConnectError"):
            await c.request("GET", "/version")


async def test_the_rate_limiter_spaces_requests_out(apiserver: ApiServer) -> None:
    settings = ClientSettings(rate_limit=10, rate_burst=2)
    async with open_client(ConnectionInfo(server=apiserver.url), settings=settings) as client:
        started = trio.current_time()
        for _ in range(12):
            await client.request("GET", "/version")
        elapsed = trio.current_time() - started
    assert elapsed >= (12 - 2) / 10 - 1e-9  # the burst of 2 is free, then 10 per second


class Login:
    """A credentials source like the operator's login handlers: counts its calls."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.calls: list[ConnectionInfo | None] = []

    async def __call__(self, *, previous: ConnectionInfo | None) -> ConnectionInfo:
        self.calls.append(previous)
        return ConnectionInfo(server=self.server, token=f"token-{len(self.calls)}")


async def test_one_401_re_authenticates_through_the_credentials_source(
    apiserver: ApiServer,
) -> None:
    login = Login(apiserver.url)
    async with open_client(login, settings=FAST) as client:
        apiserver.faults.fail_next(1, status=401, path="/version")
        await client.request("GET", "/version")
        assert client.connection.token == "token-2"
    assert len(login.calls) == 2
    assert login.calls[0] is None
    assert login.calls[1] is not None
    assert login.calls[1].token == "token-1"


async def test_a_second_401_is_surfaced_without_leaking_the_token(apiserver: ApiServer) -> None:
    login = Login(apiserver.url)
    async with open_client(login, settings=FAST) as client:
        apiserver.faults.fail_next(2, status=401, path="/version")
        with pytest.raises(Unauthorized) as info:
            await client.request("GET", "/version")
    assert len(login.calls) == 2
    assert "token-" not in str(info.value)
    assert "token-" not in repr(info.value)


@pytest.fixture
async def stalled_setup(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> tuple[ApiClient, Resource, ApiServer, str]:
    listed = await client.list(kex, "default")
    assert listed.resource_version is not None
    return client, kex, apiserver, listed.resource_version


async def test_a_stalled_watch_is_detected_within_the_inactivity_timeout(
    stalled_setup: tuple[ApiClient, Resource, ApiServer, str],
) -> None:
    client, kex, apiserver, version = stalled_setup
    async with client.watch(
        kex, "default", resource_version=version, inactivity_timeout=5, resume=False
    ) as events:
        await client.create(kex, kex_body("a"), namespace="default")
        first = await events.__anext__()
        assert first.name == "a"
        apiserver.faults.stall_watches()
        await client.create(kex, kex_body("b"), namespace="default")
        started = trio.current_time()
        with pytest.raises(WatchStalled, match="silent for 5s"):
            await events.__anext__()
        detected_after = trio.current_time() - started
    assert 5 <= detected_after < 5.5


async def test_a_stalled_watch_is_resumed_from_the_last_version(
    stalled_setup: tuple[ApiClient, Resource, ApiServer, str],
) -> None:
    client, kex, apiserver, version = stalled_setup

    async def unstall_after_reconnect() -> None:
        while len([r for r in apiserver.requests if r.is_watch]) < 2:
            await trio.sleep(0.1)
        apiserver.faults.unstall_watches()

    async with client.watch(kex, "default", resource_version=version, inactivity_timeout=5) as ev:
        await client.create(kex, kex_body("a"), namespace="default")
        assert (await ev.__anext__()).name == "a"
        apiserver.faults.stall_watches()
        await client.create(kex, kex_body("b"), namespace="default")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(unstall_after_reconnect)
            event = await ev.__anext__()
        assert (event.type, event.name) == ("ADDED", "b")
        assert ev.reconnects == 1


async def test_opening_a_watch_is_retried_after_server_errors(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    listed = await client.list(kex, "default")
    apiserver.faults.fail_next(2, status=503, watch=True)
    async with client.watch(kex, "default", resource_version=listed.resource_version) as events:
        await client.create(kex, kex_body("a"), namespace="default")
        event = await events.__anext__()
    assert event.name == "a"
    assert len([r for r in apiserver.requests if r.is_watch]) == 3


async def test_bookmarks_move_the_resource_version_forward() -> None:
    from trikopf.apiserver import open_apiserver

    async with (
        open_apiserver(bookmark_interval=1.0) as server,
        open_client(ConnectionInfo(server=server.url), settings=FAST) as client,
    ):
        configmaps = await client.resolve("configmaps")
        listed = await client.list(configmaps, "default")
        async with client.watch(
            configmaps, "default", resource_version=listed.resource_version
        ) as events:
            created = await client.create(configmaps, {"metadata": {"name": "c"}}, "default")
            assert (await events.__anext__()).name == "c"
            # A change elsewhere advances the cluster's version; only a bookmark carries it here.
            await client.create(configmaps, {"metadata": {"name": "d"}}, "kube-public")
            bookmark = await events.__anext__()
        assert bookmark.type == "BOOKMARK"
        assert int(bookmark.resource_version or 0) > int(created["metadata"]["resourceVersion"])
        assert events.resource_version == bookmark.resource_version


async def test_a_server_that_never_answers_a_watch_times_out(apiserver: ApiServer) -> None:
    settings = ClientSettings(request_timeout=5, retry_attempts=2, backoff_base=1, backoff_jitter=0)
    async with open_client(ConnectionInfo(server=apiserver.url), settings=settings) as client:
        configmaps = await client.resolve("configmaps")
        apiserver.faults.pause()
        started = trio.current_time()
        with pytest.raises(ApiTimeout):
            async with client.watch(configmaps, "default"):
                pass
        assert trio.current_time() - started == pytest.approx(5 + 1 + 5, abs=0.1)
        apiserver.faults.resume()
