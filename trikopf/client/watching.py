"""The watch stream: the connection's bytes, decoded beneath httpx, as typed watch events."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import httpcore
import httpx

from trikopf.client import jsonlib
from trikopf.client.errors import (
    ApiConnectionError,
    ApiError,
    ClientError,
    WatchStalled,
    describe,
    error_from_status,
)
from trikopf.client.throttle import backoff_delay
from trikopf.client.transport import HeadSplittingStream
from trikopf.client.watch import WatchDecoder
from trikopf.structs import WatchEvent

if TYPE_CHECKING:
    from trikopf.client.api import ApiClient
    from trikopf.client.session import Session

__all__ = ["WatchStream"]

logger = logging.getLogger("trikopf.client")


@attrs.define(eq=False)
class WatchStream:
    """An async iterator of :class:`WatchEvent`; made by ``ApiClient.watch``, not directly.

    ``resource_version`` is the last one seen (objects and bookmarks): where a new watch
    continues. ``reconnects`` counts how often the stream was resumed; ``taken``, the events
    that :meth:`deliver` took. Not shareable between
    tasks: one consumer iterates it.
    """

    client: ApiClient
    path: str
    params: dict[str, str]
    _start_version: str | None = attrs.field(alias="resource_version")
    inactivity_timeout: float | None
    resume: bool
    ends_by_server: bool
    reconnects: int = 0
    taken: int = attrs.field(default=0, init=False)  # events taken by deliver()
    _response: httpx.Response | None = attrs.field(default=None, init=False)
    _session: Session | None = attrs.field(default=None, init=False)
    _stream: HeadSplittingStream | None = attrs.field(default=None, init=False)
    _decoder: WatchDecoder | None = attrs.field(default=None, init=False)
    _ready: list[bytes] = attrs.field(factory=list, init=False)  # lines, parsed when taken
    _index: int = attrs.field(default=0, init=False)
    _failures: int = attrs.field(default=0, init=False)
    _last: dict[str, Any] | None = attrs.field(default=None, init=False)
    _delivered: bool = attrs.field(default=False, init=False)  # by the current connection
    _empty_ends: int = attrs.field(default=0, init=False)
    _done: bool = attrs.field(default=False, init=False)
    _parse: Callable[[bytes], dict[str, Any] | None] = attrs.field(
        default=WatchDecoder(chunked=False).parse, init=False
    )

    async def connect(self) -> None:
        """(Re)open the connection from the last seen resourceVersion."""
        await self._close_connection()
        params = dict(self.params)
        if self.resource_version is not None:
            params["resourceVersion"] = self.resource_version
        response, session = await self.client._open_watch(self.path, params)
        stream = response.extensions.get("network_stream")
        if not isinstance(stream, HeadSplittingStream):  # pragma: no cover - our transport
            await response.aclose()
            await self.client._release_session(session)
            raise ApiConnectionError("the watch connection is not readable beneath httpx")
        self._session = session
        chunked = "chunked" in response.headers.get("transfer-encoding", "").lower()
        length: int | None = None
        if not chunked and response.headers.get("content-length", "").strip().isdigit():
            length = int(response.headers["content-length"])
        self._response = response
        self._stream = stream
        self._delivered = False
        self._decoder = WatchDecoder(chunked=chunked, length=length)
        self._parse = self._decoder.parse
        leftover = stream.unread()  # body bytes that came with the response head
        if leftover:
            ready = self._decoder.feed_lines(leftover)
            if ready:
                self._ready = ready
                self._index = 0
                self._failures = 0
                self._empty_ends = 0
                self._delivered = True

    async def _close_connection(self) -> None:
        response, self._response = self._response, None
        stream, self._stream = self._stream, None
        session, self._session = self._session, None
        self._decoder = None
        if response is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            if stream is not None:
                try:
                    await stream.aclose()
                except (OSError, httpcore.NetworkError):
                    pass
            await response.aclose()
        if session is not None:
            await self.client._release_session(session)

    async def aclose(self) -> None:
        """Close the connection (shielded and bounded); iteration ends."""
        self._done = True
        self._ready = []
        self._index = 0
        await self._close_connection()

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._index < len(self._ready):
                line = self._ready[self._index]
                self._index += 1
                raw = self._parse(line)
                if raw is None:
                    continue
                return self._event(raw)
            if self._done:
                raise StopAsyncIteration
            await self._fill()

    def received(self) -> Iterator[WatchEvent]:
        """The events already received and not yet taken, each parsed as it is taken.

        Synchronous (no checkpoint): a consumer that handles many events takes all that one
        receive brought in one loop, then calls :meth:`receive_more`. Mixing it with ``async
        for`` is fine: each event is delivered once, in order. An ``ERROR`` event raises here.
        """
        take = self._take
        while (event := take()) is not None:  # re-read: ``async for`` may take some too
            yield event

    def deliver(self, fn: Callable[[WatchEvent], object]) -> None:
        """Call ``fn`` with each event received and not yet taken, ``BOOKMARK`` events left out.

        :meth:`received` without a generator step per event, for a consumer that only hands
        each event on (the watcher's dispatch). Synchronous; ``taken`` counts the events
        taken (bookmarks included), also when ``fn`` or an ``ERROR`` event raises.
        """
        take = self._take
        taken = 0
        try:
            while (event := take()) is not None:
                taken += 1
                if event.type != "BOOKMARK":
                    fn(event)
        finally:
            self.taken += taken

    def _take(self) -> WatchEvent | None:
        """The next received event (``BOOKMARK`` included), or ``None`` when none is left.

        The usual event is parsed and made inline (one parse, no further call); anything else
        (a blank or broken line, an ``ERROR``, a missing type or object) goes the checked way,
        which skips blank lines and raises for the rest.
        """
        ready = self._ready
        while self._index < len(ready):
            line = ready[self._index]
            self._index += 1
            try:
                raw = jsonlib.loads(line)
            except ValueError:
                raw = None
            if type(raw) is not dict:
                raw = self._parse(line)  # None for a blank line; raises for anything else
                if raw is None:
                    continue
            kind = raw.get("type")
            obj = raw.get("object")
            if type(obj) is dict and type(kind) is str and kind != "ERROR":
                self._last = obj
                return WatchEvent(kind, obj)
            return self._event(raw)
        return None

    async def receive_more(self) -> bool:
        """Wait until more events are received (then ``True``) or the stream ends (``False``).

        A checkpoint. Reads from the connection (reconnecting as ``async for`` does) only when
        every received event was taken; the new ones are then taken with :meth:`received`.
        """
        while True:
            if self._index < len(self._ready):
                return True
            if self._done:
                return False
            await self._fill()

    def _event(self, raw: Mapping[str, Any]) -> WatchEvent:
        kind = raw.get("type")
        obj = raw.get("object")
        if type(obj) is not dict or type(kind) is not str:
            raise ApiConnectionError(f"watch stream: an event without type or object: {kind!r}")
        if kind == "ERROR":
            self._done = True
            raise self._error_event(obj)
        # The version is read from the last event only when needed (resuming, or asked).
        self._last = obj
        return WatchEvent(type=kind, object=obj)

    @property
    def resource_version(self) -> str | None:
        """The last resourceVersion seen (objects and bookmarks): where a new watch continues."""
        last = self._last
        if last is not None:
            meta = last.get("metadata")
            rv = meta.get("resourceVersion") if meta else None
            if rv:
                self._start_version = rv
            self._last = None
        return self._start_version

    def _error_event(self, obj: dict[str, Any]) -> ApiError:
        code = obj.get("code") or 500
        return error_from_status(int(code), obj, method="WATCH", path=self.path)

    async def _fill(self) -> None:
        """Read from the connection until some events are ready, or the stream is done."""
        stream, decoder = self._stream, self._decoder
        if stream is None or decoder is None:
            await self._reconnect(ApiConnectionError(f"watch {self.path}: not connected"))
            return
        if decoder.ended():
            await self._end_of_stream()
            return
        size = self.client.settings.watch_read_size
        try:
            if self.inactivity_timeout is None:
                data = await stream.read(size)
            else:
                with anyio.move_on_after(self.inactivity_timeout) as scope:
                    data = await stream.read(size)
                if scope.cancelled_caught:
                    silent = f"watch {self.path}: silent for {self.inactivity_timeout:g}s"
                    await self._reconnect(WatchStalled(silent))
                    return
        except (httpcore.NetworkError, httpcore.TimeoutException, OSError) as exc:
            await self._reconnect(ApiConnectionError(f"watch {self.path}: {describe(exc)}"))
            return
        if data:
            ready = decoder.feed_lines(data)
            if ready:
                # Delivered before anything else; a finished stream is handled on the next fill.
                self._ready = ready
                self._index = 0
                self._failures = 0
                self._empty_ends = 0
                self._delivered = True
            elif decoder.ended():
                await self._end_of_stream()
            return
        if decoder.pending or decoder.chunked or decoder.expects_more():
            await self._reconnect(ApiConnectionError(f"watch {self.path}: the connection dropped"))
        else:
            await self._end_of_stream()  # a body without chunks ends when the connection does

    async def _end_of_stream(self) -> None:
        """The server ended the watch cleanly (its timeout): stop, or start the next one."""
        await self._close_connection()
        if self.ends_by_server or not self.resume:
            self._done = True
            return
        if not self._delivered:
            # Ended without a single event: do not spin against a server that keeps ending.
            settings = self.client.settings
            delay = backoff_delay(
                self._empty_ends,
                base=settings.backoff_base,
                cap=settings.backoff_max,
                jitter=settings.backoff_jitter,
            )
            self._empty_ends += 1
            await anyio.sleep(delay)
        await self._reconnect(None)

    async def _reconnect(self, error: ClientError | None) -> None:
        """Resume from the last seen resourceVersion after a drop or stall (bounded).

        Called only when every decoded event was consumed, so nothing is dropped here.
        """
        await self._close_connection()
        if error is not None:
            if not self.resume:
                self._done = True
                raise error
            self._failures += 1
            settings = self.client.settings
            if self._failures >= settings.retry_attempts:
                self._done = True
                raise error
            logger.debug("Resuming %s from %s after: %s", self.path, self.resource_version, error)
            await anyio.sleep(
                backoff_delay(
                    self._failures - 1,
                    base=settings.backoff_base,
                    cap=settings.backoff_max,
                    jitter=settings.backoff_jitter,
                )
            )
        await self.connect()
        self.reconnects += 1
