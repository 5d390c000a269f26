"""A small HTTP/1.1 server on AnyIO: plain or TLS, keep-alive, streamed responses.

It knows nothing about Kubernetes. The embedded API server and the operator's own
endpoints (health, metrics, webhooks) put their handlers on it.

One task per connection, all inside the task group of :func:`serve_http`; requests
on a connection are handled one after another (no pipelining in parallel). A
streamed response is written as chunks, each flushed as soon as the stream yields
it; while it streams, a sibling task watches the socket, so a client that hangs up
cancels the stream at once instead of at the next write.
"""

from __future__ import annotations

import logging
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import anyio
import anyio.abc
import attrs
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

__all__ = [
    "AbortResponse",
    "Handler",
    "Headers",
    "Request",
    "Response",
    "serve_http",
]

logger = logging.getLogger(__name__)

_REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    301: "Moved Permanently",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


class Headers:
    """Request headers: case-insensitive names, repeated names kept in order."""

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items = [(k.lower(), v) for k, v in items or ()]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, or ``default``."""
        name = name.lower()
        for key, value in self._items:
            if key == name:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of a header, in the order received."""
        name = name.lower()
        return [value for key, value in self._items if key == name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@attrs.frozen(kw_only=True)
class Request:
    """One parsed request with its whole body."""

    method: str
    path: str  # percent-decoded
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    raw_target: str
    client: str = ""

    def query_value(self, name: str, default: str | None = None) -> str | None:
        """The last value of a query parameter, or ``default``."""
        values = self.query.get(name)
        return values[-1] if values else default


@attrs.frozen(kw_only=True)
class Response:
    """A whole response (``body``), or a chunked one when ``stream`` is set."""

    status: int
    headers: list[tuple[str, str]] = attrs.field(factory=list)
    body: bytes = b""
    stream: Callable[[], AsyncIterator[bytes]] | None = None


Handler = Callable[[Request], Awaitable[Response]]


class AbortResponse(Exception):
    """Raised by a response stream to cut the connection without finishing the response."""


ErrorResponder = Callable[[int, str], Response]


_DISCONNECTS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    ssl.SSLError,
    OSError,  # TimeoutError too: a peer that stopped reading is dropped
)


def _only_disconnects(exc: BaseException) -> bool:
    # Exception groups (built in from 3.11, the backport before) hold their members in
    # ``.exceptions``; a group of disconnects is a disconnect.
    members = getattr(exc, "exceptions", None)
    if isinstance(members, tuple) and members:
        return all(isinstance(e, BaseException) and _only_disconnects(e) for e in members)
    return isinstance(exc, _DISCONNECTS)


class _ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _plain_error(status: int, message: str) -> Response:
    return Response(
        status=status,
        headers=[("Content-Type", "text/plain; charset=utf-8")],
        body=message.encode() + b"\n",
    )


async def serve_http(
    handler: Handler,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    max_header_size: int = 64 * 1024,
    max_body_size: int = 3 * 1024 * 1024,
    idle_timeout: float = 120.0,
    read_timeout: float = 60.0,
    write_timeout: float = 60.0,
    error_responder: ErrorResponder | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve HTTP/1.1 on ``host:port`` until cancelled.

    Starts one task per accepted connection inside its own task group. Reports the
    bound port through ``task_status.started(port)`` (useful with ``port=0``). Never
    returns by itself; cancelling the caller's scope closes the listener and every
    connection, streamed responses included. Errors of one connection are logged
    and close that connection only. ``error_responder(status, message)`` shapes the
    answers to malformed or oversized requests (plain text by default).
    """
    server = _Server(
        handler=handler,
        max_header_size=max_header_size,
        max_body_size=max_body_size,
        idle_timeout=idle_timeout,
        read_timeout=read_timeout,
        write_timeout=write_timeout,
        error_responder=error_responder or _plain_error,
    )
    tcp = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound_port = int(tcp.extra(SocketAttribute.local_port))
    listener: anyio.abc.Listener[anyio.abc.ByteStream]
    if ssl_context is not None:
        listener = TLSListener(tcp, ssl_context, standard_compatible=False, handshake_timeout=10)
    else:
        listener = tcp
    async with listener:
        task_status.started(bound_port)
        await listener.serve(server.serve_connection)


@attrs.define(eq=False)
class _Server:
    handler: Handler
    max_header_size: int
    max_body_size: int
    idle_timeout: float
    read_timeout: float
    write_timeout: float
    error_responder: ErrorResponder

    async def serve_connection(self, stream: anyio.abc.ByteStream) -> None:
        connection = _Connection(self, stream)
        try:
            async with stream:
                await connection.run()
        except _DISCONNECTS:
            pass  # the peer went away; nothing to answer
        except Exception as exc:
            if not _only_disconnects(exc):
                logger.exception("HTTP connection failed")


class _Connection:
    def __init__(self, server: _Server, stream: anyio.abc.ByteStream) -> None:
        self.server = server
        self.stream = stream
        self.buffer = bytearray()
        self.eof = False
        try:
            address = stream.extra(SocketAttribute.remote_address)
            self.client = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else ""
        except (anyio.TypedAttributeLookupError, IndexError, TypeError):
            self.client = ""

    async def _send(self, data: bytes) -> None:
        """Send, giving up (TimeoutError) on a peer that stops reading."""
        with anyio.fail_after(self.server.write_timeout):
            await self.stream.send(data)

    async def _fill(self) -> bool:
        """Receive more bytes into the buffer; False at end of stream."""
        if self.eof:
            return False
        try:
            data = await self.stream.receive()
        except anyio.EndOfStream:
            self.eof = True
            return False
        self.buffer += data
        return True

    async def run(self) -> None:
        server = self.server
        while True:
            # Wait for the next request, bounded by the keep-alive idle timeout.
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0 and not self.buffer:
                with anyio.move_on_after(server.idle_timeout):
                    if not await self._fill():
                        return
                if not self.buffer:
                    return  # idle for too long
            try:
                with anyio.fail_after(server.read_timeout):
                    request, keep_alive = await self._read_request()
            except TimeoutError:
                await self._send_response(
                    server.error_responder(408, "request timed out"), keep_alive=False
                )
                return
            except _ProtocolError as exc:
                await self._send_response(
                    server.error_responder(exc.status, exc.message), keep_alive=False
                )
                return
            if request is None:
                return
            response = await server.handler(request)
            if request.method == "HEAD":
                response = attrs.evolve(response, body=b"", stream=None)
            keep_alive = await self._send_response(response, keep_alive=keep_alive)
            if not keep_alive:
                return

    async def _read_request(self) -> tuple[Request | None, bool]:
        server = self.server
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end >= 0:
                break
            if len(self.buffer) > server.max_header_size:
                raise _ProtocolError(431, "request header fields too large")
            if not await self._fill():
                if self.buffer.strip():
                    raise _ProtocolError(400, "incomplete request head")
                return None, False
        if head_end > server.max_header_size:
            raise _ProtocolError(431, "request header fields too large")
        head = bytes(self.buffer[:head_end])
        del self.buffer[: head_end + 4]
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            raise _ProtocolError(400, "undecodable request head") from None
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
            raise _ProtocolError(400, "malformed request line")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _ProtocolError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
        items: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or line[0] in " \t":
                raise _ProtocolError(400, "malformed header line")
            items.append((name, value.strip()))
        headers = Headers(items)

        connection = (headers.get("connection") or "").lower()
        if version == "HTTP/1.0":
            keep_alive = "keep-alive" in connection
        else:
            keep_alive = "close" not in connection

        body = await self._read_body(headers)

        path_part, _, query_part = target.partition("?")
        if not path_part.startswith("/"):
            raise _ProtocolError(400, "the request target must be an absolute path")
        request = Request(
            method=method.upper(),
            path=urllib.parse.unquote(path_part),
            query=urllib.parse.parse_qs(query_part, keep_blank_values=True),
            headers=headers,
            body=body,
            raw_target=target,
            client=self.client,
        )
        return request, keep_alive

    async def _read_body(self, headers: Headers) -> bytes:
        limit = self.server.max_body_size
        transfer_encoding = (headers.get("transfer-encoding") or "").lower()
        lengths = headers.get_all("content-length")
        expects_continue = (headers.get("expect") or "").lower() == "100-continue"
        if transfer_encoding:
            if transfer_encoding != "chunked":
                raise _ProtocolError(501, f"unsupported transfer encoding: {transfer_encoding}")
            if lengths:
                raise _ProtocolError(400, "both Content-Length and chunked encoding are set")
            if expects_continue:
                await self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return await self._read_chunked(limit)
        if not lengths:
            return b""
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            raise _ProtocolError(400, "invalid Content-Length")
        length = int(lengths[0])
        if length > limit:
            raise _ProtocolError(413, f"request entity too large: limit is {limit}")
        if expects_continue and length and not self.buffer:
            await self._send(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(self.buffer) < length:
            if not await self._fill():
                raise _ProtocolError(400, "the request body ended early")
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return body

    async def _read_line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 2]
                return line
            if len(self.buffer) > self.server.max_header_size:
                raise _ProtocolError(400, "chunk header too long")
            if not await self._fill():
                raise _ProtocolError(400, "the request body ended early")

    async def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            size_text = (await self._read_line()).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _ProtocolError(400, "malformed chunk size") from None
            if size < 0:
                raise _ProtocolError(400, "malformed chunk size")
            if size == 0:
                while await self._read_line():
                    pass  # trailers are ignored
                return bytes(body)
            if len(body) + size > limit:
                raise _ProtocolError(413, f"request entity too large: limit is {limit}")
            while len(self.buffer) < size + 2:
                if not await self._fill():
                    raise _ProtocolError(400, "the request body ended early")
            if self.buffer[size : size + 2] != b"\r\n":
                raise _ProtocolError(400, "malformed chunk")
            body += self.buffer[:size]
            del self.buffer[: size + 2]

    async def _send_response(self, response: Response, *, keep_alive: bool) -> bool:
        status = response.status
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        for name, value in response.headers:
            lines.append(f"{name}: {value}")
        if not keep_alive:
            lines.append("Connection: close")
        if response.stream is None:
            lines.append(f"Content-Length: {len(response.body)}")
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
            await self._send(head + response.body)
            return keep_alive
        lines.append("Transfer-Encoding: chunked")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        await self._send(head)
        return await self._send_stream(response.stream, keep_alive=keep_alive)

    async def _send_stream(
        self, make_stream: Callable[[], AsyncIterator[bytes]], *, keep_alive: bool
    ) -> bool:
        completed = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_for_hangup, tg.cancel_scope)
            chunks = make_stream()
            try:
                async for chunk in chunks:
                    if chunk:
                        await self._send(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                await self._send(b"0\r\n\r\n")
                completed = True
            except AbortResponse:
                pass  # the connection is closed with the response unfinished
            except _DISCONNECTS:
                pass  # the peer went away (or stopped reading) mid-stream
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    with anyio.CancelScope(shield=True):
                        await aclose()
                tg.cancel_scope.cancel()
        return completed and keep_alive and not self.eof

    async def _watch_for_hangup(self, scope: anyio.CancelScope) -> None:
        # Bytes that arrive while streaming belong to the next request; keep them.
        # End of stream means the client is gone: stop producing for it.
        try:
            while await self._fill():
                if len(self.buffer) > self.server.max_header_size + self.server.max_body_size:
                    break
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError, ssl.SSLError):
            pass
        scope.cancel()
