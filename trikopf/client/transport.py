"""The watch connection: httpx and httpcore set it up, then the watch reads beneath them.

httpx's line iteration costs more per event than parsing the event itself. For watches, the
client keeps using httpx (and httpcore's pool, TLS, proxies) to connect, send the request and
read the response head, and then reads the response body straight from the connection's
network stream (``response.extensions["network_stream"]``).

That is only safe when httpcore's HTTP parser has not already buffered part of the body. The
network backend here wraps every stream so that, until a final response head has been read,
``read()`` returns bytes only up to the end of that head and keeps the rest for the next
``read()``. The HTTP parser therefore stops exactly at the body, and the body is read from the
stream by whoever reads next: the watch decoder for a 200, or httpx itself (``aread``) for an
error response. Each watch gets its own connection, which is closed (never pooled) afterwards.
"""

from __future__ import annotations

import ssl
import typing

import httpcore
import httpx
import sniffio

from trikopf.client.errors import ConfigError

__all__ = [
    "HeadSplittingBackend",
    "HeadSplittingStream",
    "NetworkBackends",
    "WatchTransport",
    "as_httpx_error",
]

_HEAD_END = b"\r\n\r\n"


class HeadSplittingStream(httpcore.AsyncNetworkStream):
    """A network stream that hands out a response head and its body in separate reads."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._pending = b""
        self._head = bytearray()  # bytes of the current head seen so far
        self._in_head = True

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        else:
            data = await self._stream.read(max_bytes, timeout)
        if not self._in_head or not data:
            return data
        start = max(0, len(self._head) - 3)  # the terminator may straddle two reads
        self._head += data
        end = self._head.find(_HEAD_END, start)
        if end < 0:
            return data
        cut = end + len(_HEAD_END) - (len(self._head) - len(data))
        head = bytes(self._head[: end + len(_HEAD_END)])
        if not head.startswith(b"HTTP/1.1 1") and not head.startswith(b"HTTP/1.0 1"):
            self._in_head = False  # a final response: the body follows, left for the reader
        self._head = bytearray()
        self._pending = data[cut:] + self._pending
        return data[:cut]

    def unread(self) -> bytes:
        """Take the body bytes read from the network but not yet handed out."""
        data, self._pending = self._pending, b""
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        inner = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return HeadSplittingStream(inner)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class NetworkBackends:
    """httpcore's Trio or AnyIO network backend, whichever event loop runs the caller.

    Each backend is made on first use and kept; used by the watch transport and by the lean
    request path (:mod:`trikopf.client.http11`).
    """

    def __init__(self) -> None:
        self._trio: httpcore.AsyncNetworkBackend | None = None
        self._anyio: httpcore.AsyncNetworkBackend | None = None

    def current(self) -> httpcore.AsyncNetworkBackend:
        if sniffio.current_async_library() == "trio":
            if self._trio is None:
                self._trio = httpcore.TrioBackend()
            return self._trio
        if self._anyio is None:
            self._anyio = httpcore.AnyIOBackend()
        return self._anyio


class HeadSplittingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's Trio or AnyIO backend (whichever runs us), with head-splitting streams."""

    def __init__(self) -> None:
        self._backends = NetworkBackends()

    def _backend(self) -> httpcore.AsyncNetworkBackend:
        return self._backends.current()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        backend = self._backend()
        stream = await backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return HeadSplittingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend().connect_unix_socket(path, timeout, socket_options)
        return HeadSplittingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend().sleep(seconds)


_EXCEPTIONS: list[tuple[type[Exception], type[httpx.TransportError]]] = [
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
]


def as_httpx_error(exc: Exception) -> Exception:
    """httpx's exception for one of httpcore's (others are returned as they are)."""
    for core, mapped in _EXCEPTIONS:
        if isinstance(exc, core):
            return mapped(str(exc))
    return exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: typing.Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = as_httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class WatchTransport(httpx.AsyncBaseTransport):
    """An httpx transport on httpcore with :class:`HeadSplittingBackend`, for watches only.

    Connections are not kept alive between watches: a watch body read beneath the HTTP parser
    leaves the connection in a state that must not be reused, and httpcore closes it.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None, proxy_url: str | None) -> None:
        backend = HeadSplittingBackend()
        self._pool: httpcore.AsyncConnectionPool
        if proxy_url:
            if not proxy_url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"proxy-url {proxy_url!r}: only http:// and https:// proxies work"
                )
            self._pool = httpcore.AsyncHTTPProxy(
                proxy_url=proxy_url,
                ssl_context=ssl_context,
                max_connections=None,  # one connection per watch, as many as watches
                max_keepalive_connections=0,
                network_backend=backend,
            )
        else:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=None,  # one connection per watch, as many as watches
                max_keepalive_connections=0,
                network_backend=backend,
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            response = await self._pool.handle_async_request(core_request)
        except Exception as exc:
            mapped = as_httpx_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
