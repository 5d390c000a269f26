"""The small HTTP/1.1 server: keep-alive, request bodies, limits, streamed responses."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import pytest

from trikopf._util.http_server import Request, Response, serve_http


class _Echo:
    """The handler under test: echoes requests; two paths stream, observed by the test."""

    def __init__(self) -> None:
        self.gate_send, self.gate = anyio.create_memory_object_stream[None](10)
        self.started = anyio.Event()
        self.closed = anyio.Event()

    async def __call__(self, request: Request) -> Response:
        if request.path == "/stream":
            gate = self.gate

            async def chunks() -> AsyncIterator[bytes]:
                for i in range(3):
                    await gate.receive()
                    yield b"part-%d\n" % i

            return Response(status=200, headers=[("Content-Type", "text/plain")], stream=chunks)
        if request.path == "/forever":
            self.started.set()
            closed = self.closed

            async def forever() -> AsyncIterator[bytes]:
                try:
                    yield b"hello\n"
                    await anyio.sleep_forever()
                finally:
                    closed.set()

            return Response(status=200, stream=forever)
        body = b"%s %s %s q=%s len=%d\n" % (
            request.method.encode(),
            request.path.encode(),
            request.raw_target.encode(),
            repr(sorted(request.query.items())).encode(),
            len(request.body),
        )
        return Response(status=200, headers=[("X-Echo", "1")], body=body + request.body)


async def _read_response(
    stream: anyio.abc.ByteStream, buffer: bytearray
) -> tuple[str, dict[str, str], bytes]:
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in buffer:
            buffer += await stream.receive()
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        buffer[:] = rest
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(buffer) < length:
            buffer += await stream.receive()
        body = bytes(buffer[:length])
        del buffer[:length]
        return lines[0], headers, body


async def _drain(stream: anyio.abc.ByteStream) -> None:
    while True:
        await stream.receive()


@pytest.fixture
def echo() -> _Echo:
    return _Echo()


@pytest.fixture
async def port(echo: _Echo) -> AsyncIterator[int]:
    async with echo.gate_send, echo.gate, anyio.create_task_group() as tg:
        bound = await tg.start(
            functools.partial(
                serve_http, echo, host="127.0.0.1", port=0, max_header_size=1024, max_body_size=100
            )
        )
        yield bound
        tg.cancel_scope.cancel()


async def test_keep_alive_serves_several_requests_on_one_connection(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        buffer = bytearray()
        for i in range(3):
            await stream.send(b"GET /a%%20b/%d?x=1&x=2&y= HTTP/1.1\r\nHost: h\r\n\r\n" % i)
            status, headers, body = await _read_response(stream, buffer)
            assert status == "HTTP/1.1 200 OK"
            assert headers["x-echo"] == "1"
            assert body.startswith(b"GET /a b/%d /a%%20b/%d?x=1&x=2&y= " % (i, i))
            assert b"('x', ['1', '2']), ('y', [''])" in body


async def test_pipelined_requests_are_answered_in_order(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"GET /one HTTP/1.1\r\n\r\nGET /two HTTP/1.1\r\n\r\n")
        buffer = bytearray()
        first = await _read_response(stream, buffer)
        second = await _read_response(stream, buffer)
    assert first[2].startswith(b"GET /one")
    assert second[2].startswith(b"GET /two")


async def test_content_length_and_chunked_bodies_are_read(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        buffer = bytearray()
        await stream.send(b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
        _, _, body = await _read_response(stream, buffer)
        assert body.endswith(b"len=5\nhello")
        await stream.send(
            b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n"
        )
        _, _, body = await _read_response(stream, buffer)
        assert body.endswith(b"len=7\nabcdefg")


async def test_expect_100_continue_is_answered_before_the_body(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"PUT /p HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        buffer = bytearray()
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
        assert bytes(buffer).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        del buffer[: len(b"HTTP/1.1 100 Continue\r\n\r\n")]
        await stream.send(b"xyz")
        status, _, body = await _read_response(stream, buffer)
    assert status == "HTTP/1.1 200 OK"
    assert body.endswith(b"len=3\nxyz")


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"POST /p HTTP/1.1\r\nContent-Length: 101\r\n\r\n", "413"),
        (
            b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n"
            + b"x" * 101
            + b"\r\n0\r\n\r\n",
            "413",
        ),
        (b"GET /p HTTP/1.1\r\nX-Big: " + b"y" * 2000 + b"\r\n\r\n", "431"),
        (b"NONSENSE\r\n\r\n", "400"),
        (b"GET /p HTTP/2.0\r\n\r\n", "505"),
        (b"POST /p HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "400"),
        (b"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "501"),
        (b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400"),
    ],
)
async def test_malformed_or_oversized_requests_get_an_error_and_a_closed_connection(
    port: int, request_bytes: bytes, expected: str
) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request_bytes)
        status, headers, _ = await _read_response(stream, bytearray())
        assert status.split(" ")[1] == expected
        assert headers["connection"] == "close"
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await _drain(stream)


async def test_streamed_chunks_are_flushed_as_they_are_produced(port: int, echo: _Echo) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"GET /stream HTTP/1.1\r\n\r\n")
        buffer = b""
        with anyio.fail_after(5):
            while b"\r\n\r\n" not in buffer:
                buffer += await stream.receive()
        assert b"Transfer-Encoding: chunked" in buffer
        buffer = buffer.partition(b"\r\n\r\n")[2]
        for i in range(3):
            await echo.gate_send.send(None)  # let the producer make exactly one more chunk
            expected = b"7\r\npart-%d\n\r\n" % i
            with anyio.fail_after(5):
                while len(buffer) < len(expected):
                    buffer += await stream.receive()
            # Nothing beyond this chunk was sent, except the terminator after the last.
            assert buffer in (expected, expected + b"0\r\n\r\n"[: len(buffer) - len(expected)])
            buffer = buffer[len(expected) :]
        with anyio.fail_after(5):
            while buffer != b"0\r\n\r\n":
                assert b"0\r\n\r\n".startswith(buffer)
                buffer += await stream.receive()


async def test_client_hanging_up_cancels_an_idle_stream(port: int, echo: _Echo) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"GET /forever HTTP/1.1\r\n\r\n")
        with anyio.fail_after(5):
            await echo.started.wait()
            received = b""
            while b"hello" not in received:
                received += await stream.receive()
    with anyio.fail_after(5):
        await echo.closed.wait()  # the stream was cancelled and closed on the hang-up


async def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout() -> None:
    closed = anyio.Event()

    async def flood(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"x" * 65536
            finally:
                closed.set()

        return Response(status=200, stream=chunks)

    async with anyio.create_task_group() as tg:
        bound = await tg.start(
            functools.partial(serve_http, flood, host="127.0.0.1", port=0, write_timeout=0.5)
        )
        async with await anyio.connect_tcp("127.0.0.1", bound) as stream:
            await stream.send(b"GET /flood HTTP/1.1\r\n\r\n")
            with anyio.fail_after(10):
                await closed.wait()  # never reading: the server gives up on its own
        tg.cancel_scope.cancel()
