"""The client's lean HTTP/1.1 request path: keep-alive reuse, framing, broken connections.

Against the embedded API server over real HTTP, and, for the misbehaviours a real server
rarely shows on demand (a connection cut mid-body, chunked bodies with extensions and trailers,
a server that closes kept connections), against a scripted TCP server in the test itself.
"""

from __future__ import annotations

import gzip
import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx
import pytest

from tests.client.conftest import FAST, kex_body
from trikopf.apiserver import ApiServer, open_apiserver
from trikopf.client import ApiClient, ApiConnectionError, ServerError, load_kubeconfig, open_client
from trikopf.client.auth import build_ssl_context
from trikopf.client.http11 import Http11Pool
from trikopf.structs import Resource

# What the scripted server answers: (connection number, request number on it, request head)
# → bytes to send, and whether to close the connection afterwards.
Script = Callable[[int, int, str], tuple[bytes, bool]]


def ok(body: bytes = b'{"kind":"Status"}', *, extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class ScriptedServer:
    """A TCP server that reads requests and answers them as its script says."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[tuple[int, str, bytes]] = []
        self.port = 0

    async def _serve(self, stream: anyio.abc.SocketStream) -> None:
        number = self.connections
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        buffer = b""
        try:
            async with stream:
                for index in range(1000):
                    while b"\r\n\r\n" not in buffer:
                        try:
                            data = await stream.receive()
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    text = head.decode()
                    length = 0
                    for line in text.split("\r\n")[1:]:
                        name, _, value = line.partition(":")
                        if name.lower() == "content-length":
                            length = int(value)
                    while len(buffer) < length:
                        buffer += await stream.receive()
                    body, buffer = buffer[:length], buffer[length:]
                    self.requests.append((number, text, body))
                    answer, close = self.script(number, index, text)
                    await stream.send(answer)
                    if close:
                        return
        finally:
            self.open_now -= 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(script)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server._serve)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def pool_for(url: str, **options: float) -> AsyncIterator[Http11Pool]:
    pool = Http11Pool(url, ssl_context=None, **options)  # type: ignore[arg-type]
    try:
        yield pool
    finally:
        await pool.aclose()


async def test_sequential_requests_reuse_one_kept_alive_connection(
    apiserver: ApiServer,
) -> None:
    async with pool_for(apiserver.url) as pool:
        for _ in range(20):
            response = await pool.request("GET", "/api/v1/namespaces/default")
            assert response.status_code == 200
            assert b'"name":"default"' in response.content.replace(b" ", b"")
        assert pool.opened == 1
        assert pool.idle_connections == 1


async def test_concurrent_requests_never_open_more_connections_than_the_limit() -> None:
    release = anyio.Event()

    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        return ok(), False

    async with scripted(script) as server, pool_for(server.url, max_connections=2) as pool:
        statuses: list[int] = []

        async def one() -> None:
            await release.wait()
            statuses.append((await pool.request("GET", "/x")).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
            release.set()
        assert statuses == [200] * 10
        assert server.connections == 2
        assert server.most_open <= 2


async def test_chunked_bodies_with_extensions_and_trailers_are_read_whole() -> None:
    body = b'{"items":[1,2,3],"kind":"List"}'
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        + b"5;note=x\r\n"
        + body[:5]
        + b"\r\n"
        + f"{len(body) - 5:x}\r\n".encode()
        + body[5:]
        + b"\r\n0\r\nX-Trailer: yes\r\n\r\n"
    )
    answers = [chunked, ok(b"{}")]

    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        return answers[index], False

    async with scripted(script) as server, pool_for(server.url) as pool:
        first = await pool.request("GET", "/list")
        second = await pool.request("GET", "/next")
    assert first.content == body
    assert second.content == b"{}"
    assert server.connections == 1  # the trailers were consumed: the connection stayed usable


async def test_gzip_bodies_are_decoded() -> None:
    payload = b'{"kind":"Big","data":"' + b"x" * 5000 + b'"}'
    packed = gzip.compress(payload)

    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        return ok(packed, extra="Content-Encoding: gzip\r\n"), False

    async with scripted(script) as server, pool_for(server.url) as pool:
        response = await pool.request("GET", "/big")
    assert response.content == payload
    assert "accept-encoding: gzip" in server.requests[0][1].lower()


async def test_a_server_that_says_connection_close_gets_a_new_connection_next_time() -> None:
    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        return ok(extra="Connection: close\r\n"), True

    async with scripted(script) as server, pool_for(server.url) as pool:
        for _ in range(3):
            assert (await pool.request("GET", "/x")).status_code == 200
        assert server.connections == 3
        assert pool.idle_connections == 0


async def test_a_kept_connection_that_the_server_closed_is_replaced_transparently() -> None:
    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        # Keeps the connection alive in its answer, then closes it anyway (an idle timeout).
        return ok(), True

    async with scripted(script) as server, pool_for(server.url) as pool:
        assert (await pool.request("PATCH", "/a", content=b"{}")).status_code == 200
        with anyio.fail_after(5):
            while server.open_now:  # the server has closed its end
                await anyio.sleep(0.01)
        assert (await pool.request("PATCH", "/b", content=b"{}")).status_code == 200
    assert server.connections == 2
    assert [r[1].split(" ")[1] for r in server.requests] == ["/a", "/b"]  # nothing sent twice


async def test_a_connection_dropped_mid_body_is_an_error_and_is_not_reused() -> None:
    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        if conn == 0:
            full = ok(b'{"kind":"Status","message":"' + b"y" * 100 + b'"}')
            return full[:-40], True  # cut in the middle of the body
        return ok(), False

    async with scripted(script) as server, pool_for(server.url) as pool:
        with pytest.raises(httpx.RemoteProtocolError, match="before the response was complete"):
            await pool.request("GET", "/cut")
        assert (await pool.request("GET", "/again")).status_code == 200
    assert server.connections == 2


async def test_a_dropped_get_is_retried_by_the_client_and_a_dropped_patch_is_not(
    tmp_path: pathlib.Path, kex: Resource
) -> None:
    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        if conn == 0 or "PATCH" in head:
            return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", True
        return ok(b'{"metadata":{"name":"a"}}'), False

    async with scripted(script) as server:
        config = tmp_path / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
            f"clusters: [{{name: c, cluster: {{server: '{server.url}'}}}}]\n"
            "users: [{name: u, user: {}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        )
        async with open_client(load_kubeconfig(config), settings=FAST) as client:
            got = await client.get(kex, "a", "default")
            assert got["metadata"]["name"] == "a"
            with pytest.raises(ApiConnectionError, match="RemoteProtocolError"):
                await client.patch(kex, "a", {"spec": {}}, namespace="default")
    methods = [r[1].split(" ")[0] for r in server.requests]
    assert methods == ["GET", "GET", "PATCH"]  # the GET twice, the PATCH once


async def test_server_errors_come_back_through_the_lean_path_as_typed_errors(
    client: ApiClient, apiserver: ApiServer, kex: Resource
) -> None:
    await client.create(kex, kex_body("a"), namespace="default")
    apiserver.faults.fail_next(1, status=500, method="PATCH", path="*/kopfexamples/a")
    with pytest.raises(ServerError) as info:
        await client.patch(kex, "a", {"spec": {"x": 1}}, namespace="default")
    assert info.value.code == 500
    patched = await client.patch(kex, "a", {"spec": {"x": 2}}, namespace="default")
    assert patched["spec"]["x"] == 2


async def test_a_cancelled_request_closes_its_connection_and_others_go_on() -> None:

    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        if "/slow" in head:
            return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{", False  # never finished
        return ok(), False

    async with scripted(script) as server, pool_for(server.url, max_connections=1) as pool:
        with anyio.move_on_after(0.2):
            await pool.request("GET", "/slow")
        assert pool.idle_connections == 0
        assert (await pool.request("GET", "/fast")).status_code == 200
    assert server.connections == 2


async def test_https_connections_are_kept_alive_and_reused(tmp_path: pathlib.Path) -> None:
    async with open_apiserver(tls=True, token="sesame") as server:
        info = load_kubeconfig(server.write_kubeconfig(tmp_path / "config"))
        context = build_ssl_context(info)
        pool = Http11Pool(
            info.server, ssl_context=context, headers={"Authorization": "Bearer sesame"}
        )
        try:
            for _ in range(5):
                response = await pool.request("GET", "/api/v1/namespaces")
                assert response.status_code == 200
                assert b"default" in response.content
            assert pool.opened == 1  # TLS session tickets do not look like a closed connection
        finally:
            await pool.aclose()


async def test_a_server_that_stops_answering_is_a_read_timeout_and_its_connection_is_dropped() -> (
    None
):
    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        if "/silent" in head:
            return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{", False  # then silence
        return ok(), False

    async with (
        scripted(script) as server,
        pool_for(server.url, max_connections=1, timeout=0.3) as pool,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await pool.request("GET", "/silent")
        assert pool.idle_connections == 0
        assert (await pool.request("GET", "/fast")).status_code == 200
    assert server.connections == 2


async def test_a_large_request_body_is_written_whole() -> None:
    # Bigger than a socket's send buffer: the write waits for the server to read on.
    body = b"x" * (1024 * 1024)

    def script(conn: int, index: int, head: str) -> tuple[bytes, bool]:
        return ok(), False

    async with scripted(script) as server, pool_for(server.url) as pool:
        response = await pool.request("PUT", "/big", content=body)
        assert response.status_code == 200
    assert server.requests[0][2] == body
