"""The request path beneath the client: lean HTTP/1.1 on httpcore's network streams.

Every PATCH, GET, POST of the API client goes through :class:`Http11Pool` unless a proxy is
configured (then httpx's own client carries them). httpcore's network backends still open the
connections and do TLS (so certificates, SNI and ALPN behave exactly as with httpx); what is
ours is the small part above them: one write for the request head and body, a response parser
for exactly what an API server sends (a head, then a body by Content-Length or chunked coding,
or until the connection closes), and a keep-alive pool with a fixed size and first-come,
first-served queueing.

Why: per request, httpx and httpcore build several objects (URL, Request, Headers, h11 state
machines, events) and httpcore's pool scans every queued request and every connection on each
change. That was about half of the operator's CPU while it wrote patches.

Errors are raised as httpx's transport exceptions (``ConnectError``, ``ReadTimeout``,
``RemoteProtocolError``, ``PoolTimeout``...), so that the client maps them as it maps httpx's.
"""

from __future__ import annotations

import os
import select
import ssl
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import anyio
import httpcore
import httpx
import sniffio
import trio

from trikopf._util.clock import current_time
from trikopf.client.transport import NetworkBackends, as_httpx_error

__all__ = ["Http11Pool", "LeanResponse"]

_READ_SIZE = 64 * 1024
_MAX_HEAD = 64 * 1024
_MAX_CHUNK_LINE = 4096
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class LeanResponse:
    """A whole response: status, headers (lower-case names), body bytes (decoded if gzipped)."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body as text (UTF-8, with replacement characters for invalid bytes)."""
        return self.content.decode("utf-8", errors="replace")


class _TrioPlainStream:
    """A plain TCP connection under Trio, written and read on its socket directly.

    The same contract as httpcore's network streams (``read``, ``write``, ``aclose``,
    ``get_extra_info("is_readable")``, httpcore's exceptions), without their layers per call:
    a write that the kernel takes at once costs one ``send``, a read one wait for readability
    (in a cancel scope only when there is a timeout) and one ``recv``. Trio only: asyncio's
    transports read their sockets themselves, so there httpcore's streams are used.
    """

    __slots__ = ("_fd", "_stream")

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        # The stream's socket stays its owner (it closes it); we only read and write its
        # descriptor, which the socket has made non-blocking.
        self._fd: int = stream.get_extra_info("socket").fileno()

    async def write(self, data: bytes, seconds: float | None = None) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._fd, view)
            except BlockingIOError:
                await self._wait(
                    trio.lowlevel.wait_writable, seconds, httpcore.WriteTimeout, httpcore.WriteError
                )
                continue
            except OSError as exc:
                raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc
            view = view[sent:]

    async def read(self, max_bytes: int, seconds: float | None = None) -> bytes:
        while True:
            # Wait first: a response is never there the moment its request has been written.
            await self._wait(
                trio.lowlevel.wait_readable, seconds, httpcore.ReadTimeout, httpcore.ReadError
            )
            try:
                return os.read(self._fd, max_bytes)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def _wait(
        self, wait: Any, seconds: float | None, slow: type[Exception], broken: type[Exception]
    ) -> None:
        # (httpcore's stream protocol passes the timeout per call, as `seconds` here.)
        try:
            if seconds is None:
                await wait(self._fd)
                return
            with trio.CancelScope(deadline=trio.current_time() + seconds) as scope:
                await wait(self._fd)
        except trio.ClosedResourceError as exc:
            raise broken("the connection was closed") from exc
        if scope.cancelled_caught:
            raise slow(f"no progress within {seconds:g}s")

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _is_readable(self._fd)
        return self._stream.get_extra_info(info)

    async def aclose(self) -> None:
        await self._stream.aclose()


def _is_readable(fd: int) -> bool:
    poll = getattr(select, "poll", None)
    if poll is None:  # pragma: no cover (Windows)
        return bool(select.select([fd], [], [], 0)[0])
    poller = poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


_Stream = httpcore.AsyncNetworkStream | _TrioPlainStream


class _Connection:
    __slots__ = ("buffer", "idle_since", "read_timeout", "reused", "stream")

    def __init__(self, stream: _Stream, read_timeout: float | None) -> None:
        self.stream = stream
        self.read_timeout = read_timeout
        self.buffer = bytearray()
        self.reused = False
        self.idle_since = 0.0


class Http11Pool:
    """Keep-alive HTTP/1.1 connections to one API server, at most ``max_connections`` of them.

    :meth:`request` waits (first come, first served, at most ``pool_timeout`` seconds) for a
    free connection slot, reuses the most recently returned idle connection or opens one, sends
    the request and reads the whole response. It returns when the response is read; it starts
    no task. Cancelling the caller closes the connection it was using (its state is unknown);
    other requests are not affected. A kept connection that the server has closed meanwhile is
    noticed before it is used (or when writing to it fails) and replaced by a fresh one.
    """

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None = None,
        headers: Mapping[str, str] = {},
        max_connections: int = 20,
        connect_timeout: float | None = 10.0,
        timeout: float | None = 30.0,
        pool_timeout: float | None = 30.0,
        keepalive_expiry: float = 30.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) server address: {url!r}")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._tls = parts.scheme == "https"
        if self._tls and ssl_context is None:
            ssl_context = ssl.create_default_context()
            ssl_context.set_alpn_protocols(["http/1.1"])
        self._ssl_context = ssl_context
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        self._server_hostname = server_hostname or self._host
        self._base_path = parts.path.rstrip("/")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        fixed = {"Host": netloc, "Accept-Encoding": "gzip, deflate", **headers}
        self._fixed = "".join(f"{k}: {_value(v)}\r\n" for k, v in fixed.items())
        self.max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._pool_timeout = pool_timeout
        self._keepalive_expiry = keepalive_expiry
        self._idle: list[_Connection] = []
        self._slots: anyio.Semaphore | None = None  # made in the event loop, on first use
        self._backends = NetworkBackends()
        self._closed = False
        self.opened = 0  # connections opened so far (for tests and statistics)

    @property
    def idle_connections(self) -> int:
        """How many connections wait, open, for the next request."""
        return len(self._idle)

    def target(self, path: str, params: Mapping[str, str] | None = None) -> str:
        """The request target for ``path`` under the server's base path, with the query."""
        target = quote(self._base_path + path, safe=_PATH_SAFE)
        if params:
            target += "?" + urlencode(params)
        return target

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> LeanResponse:
        """Send one request and read its whole response (see the class for the contract)."""
        if self._closed:
            raise httpx.ConnectError("the connection pool is closed")
        head = f"{method} {self.target(path, params)} HTTP/1.1\r\n{self._fixed}"
        if headers:
            head += "".join(f"{k}: {_value(v)}\r\n" for k, v in headers.items())
        if content is not None:
            head += f"Content-Length: {len(content)}\r\n\r\n"
            data = head.encode("latin-1") + content
        else:
            if method in ("POST", "PUT", "PATCH"):
                head += "Content-Length: 0\r\n"
            data = (head + "\r\n").encode("latin-1")
        slots = self._slots
        if slots is None:
            slots = self._slots = anyio.Semaphore(self.max_connections)
        try:
            slots.acquire_nowait()  # a free slot means nobody queues: no checkpoint needed
        except anyio.WouldBlock:
            try:
                with anyio.fail_after(_bound(self._pool_timeout)):
                    await slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection in time") from None
        try:
            return await self._exchange(method, data)
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise as_httpx_error(exc) from exc
        finally:
            slots.release()

    async def _exchange(self, method: str, data: bytes) -> LeanResponse:
        while True:
            conn = await self._take_idle()
            if conn is None:
                conn = await self._connect()
            try:
                try:
                    await conn.stream.write(data, self._timeout)
                except (httpcore.WriteError, httpcore.NetworkError):
                    if conn.reused:
                        # The server closed a kept connection just now: nothing was processed,
                        # send it again on a fresh one.
                        await _close(conn)
                        continue
                    raise
                response, keep = await _read_response(conn, method)
            except BaseException:
                await _close(conn)
                raise
            if keep and not self._closed:
                conn.reused = True
                conn.idle_since = current_time()
                self._idle.append(conn)
            else:
                await _close(conn)
            return response

    async def _take_idle(self) -> _Connection | None:
        now = current_time()
        while self._idle and now - self._idle[0].idle_since > self._keepalive_expiry:
            await _close(self._idle.pop(0))  # the least recently used: not needed for long
        while self._idle:
            conn = self._idle.pop()
            if (
                now - conn.idle_since > self._keepalive_expiry
                or conn.buffer
                or conn.stream.get_extra_info("is_readable")
            ):
                # Expired, or the server spoke while nobody asked (it closed the connection).
                await _close(conn)
                continue
            return conn
        return None

    async def _connect(self) -> _Connection:
        backend = self._backends.current()
        try:
            stream = await backend.connect_tcp(self._host, self._port, self._connect_timeout)
        except (httpcore.TimeoutException, httpcore.NetworkError) as exc:
            raise as_httpx_error(exc) from exc
        try:
            if self._tls:
                assert self._ssl_context is not None
                stream = await stream.start_tls(
                    self._ssl_context, self._server_hostname, self._connect_timeout
                )
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            if isinstance(exc, httpcore.TimeoutException | httpcore.NetworkError):
                raise as_httpx_error(exc) from exc
            raise
        self.opened += 1
        if not self._tls and sniffio.current_async_library() == "trio":
            return _Connection(_TrioPlainStream(stream), self._timeout)
        return _Connection(stream, self._timeout)

    async def aclose(self) -> None:
        """Close the idle connections now; those in use are closed when their request ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        with anyio.CancelScope(shield=True):
            for conn in idle:
                await _close(conn)


def _value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise httpx.LocalProtocolError("a header value contains a line break")
    return value


def _bound(seconds: float | None) -> float:
    return float("inf") if seconds is None else seconds


async def _close(conn: _Connection) -> None:
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        try:
            await conn.stream.aclose()
        except (httpcore.NetworkError, OSError):
            pass


async def _fill(conn: _Connection) -> None:
    """Read more bytes into the connection's buffer; a closed connection is an error here."""
    data = await conn.stream.read(_READ_SIZE, conn.read_timeout)
    if not data:
        raise httpcore.RemoteProtocolError(
            "the server closed the connection before the response was complete"
            if conn.buffer
            else "the server closed the connection without sending a response"
        )
    conn.buffer += data


async def _read_response(conn: _Connection, method: str) -> tuple[LeanResponse, bool]:
    """Read one response from ``conn``; returns it and whether the connection can be reused."""
    buf = conn.buffer
    while True:
        end = buf.find(b"\r\n\r\n")
        searched = 0
        while end < 0:
            if len(buf) > _MAX_HEAD:
                raise httpcore.RemoteProtocolError("the response head is too long")
            searched = max(0, len(buf) - 3)
            await _fill(conn)
            end = buf.find(b"\r\n\r\n", searched)
        head = bytes(buf[:end]).decode("latin-1")
        del buf[: end + 4]
        status, version, headers = _parse_head(head)
        if status >= 200 or status == 101:
            break  # 1xx (100 Continue, 103 Early Hints) come before the real response
    keep = version == "HTTP/1.1"
    connection = headers.get("connection", "").lower()
    if "close" in connection:
        keep = False
    elif version == "HTTP/1.0" and "keep-alive" in connection:
        keep = True
    if status == 101:
        raise httpcore.RemoteProtocolError("the server switched protocols unasked")
    encoding = headers.get("transfer-encoding", "").lower()
    if method == "HEAD" or status in (204, 304):
        body = b""
    elif "chunked" in encoding:
        body = await _read_chunked(conn)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"].split(",")[0].strip())
        except ValueError:
            raise httpcore.RemoteProtocolError("a bad Content-Length") from None
        if length < 0:
            raise httpcore.RemoteProtocolError("a bad Content-Length")
        while len(buf) < length:
            await _fill(conn)
        body = bytes(buf[:length])
        del buf[:length]
    else:
        # No length and no chunks: the body lasts until the server closes the connection.
        while True:
            data = await conn.stream.read(_READ_SIZE, conn.read_timeout)
            if not data:
                break
            buf += data
        body = bytes(buf)
        buf.clear()
        keep = False
    if buf:
        keep = False  # bytes nobody asked for: do not trust the connection any more
    coding = headers.get("content-encoding", "").lower()
    if coding in ("gzip", "deflate") and body:
        try:
            body = zlib.decompress(body, 47 if coding == "gzip" else zlib.MAX_WBITS)
        except zlib.error:
            try:
                body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some send it
            except zlib.error:
                raise httpcore.RemoteProtocolError(f"the {coding} body is corrupt") from None
    return LeanResponse(status, headers, body), keep


def _parse_head(head: str) -> tuple[int, str, dict[str, str]]:
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise httpcore.RemoteProtocolError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise httpcore.RemoteProtocolError(f"a malformed header line: {line[:80]!r}")
        name = name.lower()
        value = value.strip()
        if name in headers:
            headers[name] = f"{headers[name]}, {value}"
        else:
            headers[name] = value
    return int(parts[1]), parts[0], headers


async def _read_chunked(conn: _Connection) -> bytes:
    buf = conn.buffer
    body = bytearray()
    while True:
        end = buf.find(b"\r\n")
        while end < 0:
            if len(buf) > _MAX_CHUNK_LINE:
                raise httpcore.RemoteProtocolError("a chunk header is too long")
            await _fill(conn)
            end = buf.find(b"\r\n")
        try:
            size = int(bytes(buf[:end]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise httpcore.RemoteProtocolError("a bad chunk size") from None
        del buf[: end + 2]
        if size == 0:
            # Trailer lines (ignored) up to an empty line.
            while True:
                end = buf.find(b"\r\n")
                while end < 0:
                    if len(buf) > _MAX_HEAD:
                        raise httpcore.RemoteProtocolError("the trailers are too long")
                    await _fill(conn)
                    end = buf.find(b"\r\n")
                line_empty = end == 0
                del buf[: end + 2]
                if line_empty:
                    return bytes(body)
        while len(buf) < size + 2:
            await _fill(conn)
        if buf[size : size + 2] != b"\r\n":
            raise httpcore.RemoteProtocolError("a chunk does not end with CRLF")
        body += buf[:size]
        del buf[: size + 2]
