"""The watch at the wire: a scripted raw HTTP server sends exactly the bytes each case needs.

A transport-level fake for narrow cases the embedded API server does not produce: several
events and the end of the stream in one segment, a connection cut in the middle of an event,
a body without chunked coding, an ERROR event with a code other than 410.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest

from trikopf.client import (
    ApiConnectionError,
    ClientSettings,
    ConnectionInfo,
    Gone,
    ServerError,
    open_client,
)
from trikopf.structs import Resource

PODS = Resource(group="", version="v1", plural="pods", kind="Pod")
SETTINGS = ClientSettings(backoff_base=0.001, backoff_max=0.01, rate_limit=float("inf"))


def event(name: str, rv: int, kind: str = "ADDED") -> bytes:
    body = {"type": kind, "object": {"metadata": {"name": name, "resourceVersion": str(rv)}}}
    return json.dumps(body).encode() + b"\n"


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n" % len(payload) + payload + b"\r\n"


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


class Script:
    """Answers the n-th connection with ``answers[n]`` (sent in one write), then closes it."""

    keep_open = False

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.targets: list[str] = []

    async def serve(self, stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head = b""
            while b"\r\n\r\n" not in head:
                head += await stream.receive()
            self.targets.append(head.split(b" ", 2)[1].decode())
            index = len(self.targets) - 1
            if index < len(self.answers):
                await stream.send(self.answers[index])
            if self.keep_open:
                await anyio.sleep_forever()


@pytest.fixture
async def script_server() -> AsyncIterator[tuple[Script, str]]:
    script = Script([])
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, script.serve)
        yield script, f"http://127.0.0.1:{port}"
        tg.cancel_scope.cancel()
    await listener.aclose()


async def collect(url: str, **kwargs: Any) -> list[tuple[str, str | None]]:
    seen: list[tuple[str, str | None]] = []
    async with (
        open_client(ConnectionInfo(server=url), settings=SETTINGS) as client,
        client.watch(PODS, "default", **kwargs) as events,
    ):
        async for e in events:
            seen.append((e.type, e.name))
    return seen


async def test_events_and_the_end_of_the_stream_in_one_segment_are_all_delivered(
    script_server: tuple[Script, str],
) -> None:
    script, url = script_server
    body = b"".join(chunk(event(f"p{i}", i)) for i in range(1, 4)) + b"0\r\n\r\n"
    script.answers = [CHUNKED_HEAD + body]
    seen = await collect(url, resource_version="0", timeout_seconds=5)
    assert seen == [("ADDED", "p1"), ("ADDED", "p2"), ("ADDED", "p3")]


async def test_a_connection_cut_mid_event_is_resumed_from_the_last_whole_event(
    script_server: tuple[Script, str],
) -> None:
    script, url = script_server
    first = CHUNKED_HEAD + chunk(event("p1", 11)) + chunk(event("p2", 12))[:25]  # then cut
    second = CHUNKED_HEAD + chunk(event("p2", 12)) + chunk(event("p3", 13)) + b"0\r\n\r\n"
    script.answers = [first, second]
    seen = await collect(url, resource_version="10", timeout_seconds=5)
    assert seen == [("ADDED", "p1"), ("ADDED", "p2"), ("ADDED", "p3")]
    assert "resourceVersion=10" in script.targets[0]
    assert "resourceVersion=11" in script.targets[1]


async def test_a_body_without_chunked_coding_ends_with_the_connection(
    script_server: tuple[Script, str],
) -> None:
    script, url = script_server
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    script.answers = [head + event("p1", 1) + event("p2", 2, "MODIFIED")]
    seen = await collect(url, timeout_seconds=5)
    assert seen == [("ADDED", "p1"), ("MODIFIED", "p2")]


async def test_an_error_event_raises_its_typed_error(script_server: tuple[Script, str]) -> None:
    script, url = script_server
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 500,
        "reason": "InternalError",
        "message": "etcd is unhappy",
    }
    error = json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
    script.answers = [CHUNKED_HEAD + chunk(event("p1", 1)) + chunk(error)]
    with pytest.raises(ServerError, match="etcd is unhappy"):
        await collect(url)


async def test_a_410_answer_to_the_watch_request_raises_gone(
    script_server: tuple[Script, str],
) -> None:
    script, url = script_server
    status = json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version",
        }
    ).encode()
    script.answers = [
        b"HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(status), status)
    ]
    with pytest.raises(Gone, match="too old resource version"):
        await collect(url, resource_version="1")


async def test_a_server_that_keeps_cutting_the_stream_is_given_up_on(
    script_server: tuple[Script, str],
) -> None:
    script, url = script_server
    script.answers = [CHUNKED_HEAD + chunk(event("p1", 1))[:10]] * 10
    with pytest.raises(ApiConnectionError, match="dropped"):
        await collect(url)
    assert len(script.targets) == SETTINGS.retry_attempts


class KeepOpen(Script):
    """Like :class:`Script`, but keeps each connection open after answering."""

    keep_open = True


async def test_a_body_with_a_content_length_ends_after_that_many_bytes() -> None:
    body = event("p1", 1) + event("p2", 2)
    script = KeepOpen(
        [
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        ]
    )
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, script.serve)
        with anyio.fail_after(10):
            seen = await collect(f"http://127.0.0.1:{port}", timeout_seconds=5)
        tg.cancel_scope.cancel()
    await listener.aclose()
    assert seen == [("ADDED", "p1"), ("ADDED", "p2")]
