"""Finding the cluster and opening the client: discovery of the config, shared re-logins."""

from __future__ import annotations

import pathlib

import anyio
import pytest

from trikopf.apiserver import ApiServer
from trikopf.client import ClientSettings, ConfigError, ConnectionInfo, discover, open_client


async def test_open_client_without_arguments_uses_kubeconfig_from_the_environment(
    apiserver: ApiServer, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = apiserver.write_kubeconfig(tmp_path / "config")
    monkeypatch.setenv("KUBECONFIG", str(path))
    async with open_client() as client:
        assert client.connection.server == apiserver.url
        assert client.default_namespace == "default"
        assert (await client.request("GET", "/version"))["major"]


def test_discover_explains_where_it_looked(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError) as info:
        discover()
    message = str(info.value)
    assert "KUBECONFIG is not set" in message
    assert "~/.kube/config does not exist" in message
    assert "KUBERNETES_SERVICE_HOST is not set" in message


class SlowLogin:
    """A credentials source that takes a while, to let concurrent 401s pile up."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.calls = 0

    async def __call__(self, *, previous: ConnectionInfo | None) -> ConnectionInfo:
        self.calls += 1
        await anyio.sleep(0.05)
        return ConnectionInfo(server=self.server, token=f"t{self.calls}")


async def test_concurrent_401s_share_one_re_login(apiserver: ApiServer) -> None:
    login = SlowLogin(apiserver.url)
    settings = ClientSettings(rate_limit=float("inf"))
    async with open_client(login, settings=settings) as client:
        apiserver.faults.fail_next(5, status=401, path="/version")
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(client.request, "GET", "/version")
    assert login.calls == 2  # the first login, then one shared re-login


async def test_plain_text_answers_are_returned_as_text(apiserver: ApiServer) -> None:
    async with open_client(ConnectionInfo(server=apiserver.url)) as client:
        assert await client.request("GET", "/healthz") == "ok"


class CountingLogin:
    def __init__(self, server: str) -> None:
        self.server = server
        self.calls = 0

    async def __call__(self, *, previous: ConnectionInfo | None) -> ConnectionInfo:
        self.calls += 1
        return ConnectionInfo(server=self.server, token=f"t{self.calls}")


async def test_a_watch_keeps_running_across_a_re_login(apiserver: ApiServer) -> None:
    login = CountingLogin(apiserver.url)
    settings = ClientSettings(rate_limit=float("inf"))
    async with open_client(login, settings=settings) as client:
        configmaps = await client.resolve("configmaps")
        listed = await client.list(configmaps, "default")
        async with client.watch(
            configmaps, "default", resource_version=listed.resource_version
        ) as events:
            # New credentials mean a new connection pool; the open watch stays on the old one.
            apiserver.faults.fail_next(1, status=401, method="POST")
            await client.create(configmaps, {"metadata": {"name": "a"}}, "default")
            assert login.calls == 2
            assert client.connection.token == "t2"
            assert (await events.__anext__()).name == "a"
            await client.create(configmaps, {"metadata": {"name": "b"}}, "default")
            assert (await events.__anext__()).name == "b"
        # The old pool is closed once its last watch ends; the client goes on working.
        apiserver.faults.fail_next(1, status=401, method="GET")
        assert (await client.get(configmaps, "b", "default"))["metadata"]["name"] == "b"
        assert login.calls == 3
