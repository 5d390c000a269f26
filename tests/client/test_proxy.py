"""``proxy-url``: requests and watches go through an HTTP forward proxy."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import anyio
import anyio.abc
import attrs
import pytest

from trikopf.apiserver import ApiServer
from trikopf.client import ClientSettings, load_kubeconfig, open_client


class ForwardProxy:
    """A minimal HTTP/1.1 forward proxy: one request per connection, bytes piped both ways."""

    def __init__(self) -> None:
        self.requested: list[str] = []

    async def serve(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            head = b""
            while b"\r\n\r\n" not in head:
                data = await client.receive()
                head += data
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode().split(" ")
            self.requested.append(target)
            url = urlsplit(target)
            path = url.path + (f"?{url.query}" if url.query else "")
            assert url.hostname is not None
            assert url.port is not None
            upstream = await anyio.connect_tcp(url.hostname, url.port)
            async with upstream, anyio.create_task_group() as tg:
                # One request per connection: the upstream closes after answering, and so the
                # client opens a new connection (through this proxy) for its next request.
                headers, _, body = rest.partition(b"\r\n\r\n")
                kept = [
                    h for h in headers.split(b"\r\n") if not h.lower().startswith(b"connection:")
                ]
                request = f"{method} {path} {version}\r\n".encode() + b"\r\n".join(kept)
                await upstream.send(request + b"\r\nConnection: close\r\n\r\n" + body)

                async def pump(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream) -> None:
                    try:
                        async for data in source:
                            await sink.send(data)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(pump, client, upstream)
                tg.start_soon(pump, upstream, client)


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[ForwardProxy, str]]:
    forward = ForwardProxy()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, forward.serve)
        yield forward, f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()
    await listener.aclose()


async def test_requests_and_watches_go_through_the_proxy(
    apiserver: ApiServer, proxy: tuple[ForwardProxy, str], tmp_path: pathlib.Path
) -> None:
    forward, proxy_url = proxy
    info = load_kubeconfig(apiserver.write_kubeconfig(tmp_path / "config"))
    info = attrs.evolve(info, proxy_url=proxy_url)
    settings = ClientSettings(rate_limit=float("inf"))
    async with open_client(info, settings=settings) as client:
        configmaps = await client.resolve("configmaps")
        listed = await client.list(configmaps, "default")
        async with client.watch(
            configmaps, "default", resource_version=listed.resource_version
        ) as events:
            await client.create(configmaps, {"metadata": {"name": "a"}}, "default")
            assert (await events.__anext__()).name == "a"
    assert any(
        "/api/v1/namespaces/default/configmaps?" in t and "watch=true" in t
        for t in forward.requested
    )
    assert any(t.endswith("/api/v1/namespaces/default/configmaps") for t in forward.requested)
    assert all(t.startswith(apiserver.url) for t in forward.requested)
