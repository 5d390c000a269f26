"""Watch streams read over a raw socket: chunk by chunk, bounded by deadlines, never by sleeps.

httpx's streaming iterators are nested async generators; leaving one early under Trio
leaves the inner ones to the garbage collector, which warns (and warnings are errors
here). A tiny HTTP/1.1 reader also lets the tests see the chunks exactly as sent.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx


class WatchStream:
    """Events of one watch response, read on demand with a deadline."""

    def __init__(self, stream: anyio.abc.ByteStream, buffer: bytes) -> None:
        self._stream = stream
        self._buffer = buffer  # raw bytes after the response head
        self._body = b""  # de-chunked bytes not yet split into lines
        self.ended = False
        self.chunks = 0

    async def _receive(self) -> None:
        try:
            self._buffer += await self._stream.receive()
        except anyio.EndOfStream:
            raise EOFError("the server closed the connection mid-stream") from None

    async def _next_chunk(self) -> bytes | None:
        while b"\r\n" not in self._buffer:
            await self._receive()
        size_line, _, self._buffer = self._buffer.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(self._buffer) < size + 2:
            await self._receive()
        chunk, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
        if size == 0:
            self.ended = True
            return None
        self.chunks += 1
        return chunk

    async def _next_line(self) -> str | None:
        while b"\n" not in self._body:
            if self.ended:
                return None
            chunk = await self._next_chunk()
            if chunk is None:
                return None
            self._body += chunk
        line, _, self._body = self._body.partition(b"\n")
        return line.decode()

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next event; fails the test if none arrives within ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            while True:
                line = await self._next_line()
                if line is None:
                    raise EOFError("the watch stream ended")
                if line.strip():
                    event: dict[str, Any] = json.loads(line)
                    return event

    async def take(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        return [await self.next(timeout) for _ in range(count)]

    async def rest(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Every remaining event until the server ends the stream."""
        events = []
        with anyio.fail_after(timeout):
            while (line := await self._next_line()) is not None:
                if line.strip():
                    events.append(json.loads(line))
        return events


@asynccontextmanager
async def open_watch(
    client: httpx.AsyncClient,
    path: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    **params: str,
) -> AsyncIterator[WatchStream]:
    """Open a watch request (``watch=1`` added) to the client's server and read its events."""
    async with open_stream(client, path, {"watch": "1", **params}, ssl_context=ssl_context) as (
        status,
        headers,
        stream,
    ):
        assert status == 200, headers
        assert headers["content-type"] == "application/json"
        assert headers["transfer-encoding"] == "chunked"
        yield stream


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    path: str,
    params: dict[str, str],
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[tuple[int, dict[str, str], WatchStream]]:
    """A GET request over a fresh connection: (status, headers, body reader)."""
    url = client.base_url
    host = url.host
    port = url.port or (443 if url.scheme == "https" else 80)
    target = path + "?" + urllib.parse.urlencode(params)
    head = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Accept: application/json"]
    if "authorization" in client.headers:
        head.append(f"Authorization: {client.headers['authorization']}")
    request = ("\r\n".join(head) + "\r\n\r\n").encode()
    with anyio.fail_after(5):
        stream: anyio.abc.ByteStream
        if ssl_context is not None:
            stream = await anyio.connect_tcp(
                host, port, ssl_context=ssl_context, tls_standard_compatible=False
            )
        else:
            stream = await anyio.connect_tcp(host, port)
    async with stream:
        await stream.send(request)
        buffer = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
        head_bytes, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        yield status, headers, WatchStream(stream, rest)
