"""The watcher's reconnect timing on Trio's virtual clock, with a scripted stand-in for the API.

End-to-end behaviour (410, dropped streams, errors) is tested on the embedded server in
``test_operator.py``; this narrow test pins down *when* the watcher reconnects, which needs a
virtual clock and a server that ends streams on cue.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

import anyio
import attrs
import pytest

from tests.clocks import virtual_time
from trikopf.client.errors import ServerError
from trikopf.client.watching import WatchStream
from trikopf.reactor.watching import serve_watch
from trikopf.settings import WatchingSettings
from trikopf.structs import ObjectList, Resource, Status, WatchEvent

pytestmark = pytest.mark.anyio

RESOURCE = Resource(group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample")


@pytest.fixture(params=[pytest.param("trio", id="trio-virtual-time")])
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


@attrs.define
class ScriptedApi:
    """Lists nothing; each watch lasts ``stream_seconds`` (or fails) as scripted, then ends."""

    streams: list[float | Exception]
    opened: list[float] = attrs.field(factory=list)
    done: anyio.Event = attrs.field(factory=anyio.Event)

    async def list(self, resource: Resource, **_: Any) -> ObjectList:
        return ObjectList(items=[], resource_version="1")

    @contextlib.asynccontextmanager
    async def watch(self, resource: Resource, **_: Any) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        self.opened.append(anyio.current_time())
        if not self.streams:
            self.done.set()
            await anyio.sleep_forever()
        script = self.streams.pop(0)
        if isinstance(script, Exception):
            raise script

        async def quiet() -> AsyncIterator[WatchEvent]:
            await anyio.sleep(script)
            return
            yield  # an async generator that yields nothing

        yield quiet()


@attrs.define
class Nowhere:
    def dispatch(self, event: WatchEvent) -> None:
        raise AssertionError("no events were scripted")

    def forget_missing(self, present: Iterable[str]) -> None:
        pass


async def run_script(
    api: ScriptedApi, settings: WatchingSettings, supervisor: Any = None
) -> list[float]:
    """Serve the watch until ``api`` is done; the times its streams were opened, from the start."""
    async with anyio.create_task_group() as tg:
        start = anyio.current_time()
        await tg.start(
            lambda task_status: serve_watch(
                api,  # type: ignore[arg-type]
                RESOURCE,
                None,
                supervisor=supervisor if supervisor is not None else Nowhere(),
                settings=settings,
                task_status=task_status,
            )
        )
        with anyio.fail_after(10_000):
            await api.done.wait()
        tg.cancel_scope.cancel()
    return [round(t - start, 3) for t in api.opened]


async def test_quiet_streams_that_reach_their_timeout_are_reopened_at_once() -> None:
    api = ScriptedApi(streams=[300.0, 300.0, 300.0, 300.0])
    opened = await run_script(api, WatchingSettings(reconnect_backoff=1.0))
    assert opened == [0.0, 300.0, 600.0, 900.0, 1200.0]


async def test_streams_that_end_at_once_empty_back_off_doubling_up_to_the_maximum() -> None:
    api = ScriptedApi(streams=[0.0] * 6)
    opened = await run_script(
        api, WatchingSettings(reconnect_backoff=1.0, reconnect_backoff_max=8.0)
    )
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    assert gaps == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


async def test_errors_back_off_and_a_lasting_stream_resets_the_backoff() -> None:
    error = ServerError(Status(code=500, message="boom"))
    api = ScriptedApi(streams=[error, error, 60.0, error])
    opened = await run_script(api, WatchingSettings(reconnect_backoff=1.0))
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    # 1 s, 2 s after the errors; the stream lasts 60 s and ends; then 1 s again after an error.
    assert gaps == [1.0, 2.0, 60.0, 1.0]


class OneEventThenQuiet(WatchStream):
    """A watch stream that brings one event, then nothing (the server sends no more)."""

    def __init__(self) -> None:
        super().__init__(
            client=None,  # type: ignore[arg-type]
            path="",
            params={},
            resource_version="1",
            inactivity_timeout=None,
            resume=False,
            ends_by_server=True,
        )
        self.events = [WatchEvent(type="ADDED", object={"metadata": {"name": "a"}})]

    async def receive_more(self) -> bool:
        if not self.events:
            await anyio.sleep_forever()
        return True

    def received(self) -> Iterator[WatchEvent]:
        events, self.events = self.events, []
        yield from events

    def deliver(self, fn: Callable[[WatchEvent], object]) -> None:
        events, self.events = self.events, []
        self.taken += len(events)
        for event in events:
            fn(event)


@attrs.define
class QuietStreamsApi:
    """Lists nothing; each watch brings one event and then stays quiet; records the opens."""

    streams: int
    opened: list[float] = attrs.field(factory=list)
    done: anyio.Event = attrs.field(factory=anyio.Event)

    async def list(self, resource: Resource, **_: Any) -> ObjectList:
        return ObjectList(items=[], resource_version="1")

    @contextlib.asynccontextmanager
    async def watch(self, resource: Resource, **_: Any) -> AsyncIterator[WatchStream]:
        self.opened.append(anyio.current_time())
        if len(self.opened) > self.streams:
            self.done.set()
            await anyio.sleep_forever()
        yield OneEventThenQuiet()


@attrs.define
class SlowToDrain:
    """Congested by each event for ``seconds``: the time its backlog takes to go down."""

    seconds: float
    log: list[str] = attrs.field(factory=list)
    _congested: bool = False

    def dispatch(self, event: WatchEvent) -> None:
        self._congested = True

    def forget_missing(self, present: Iterable[str]) -> None:
        pass

    def congested(self) -> bool:
        return self._congested

    async def wait_uncongested(self) -> None:
        start = anyio.current_time()
        try:
            await anyio.sleep(self.seconds)
            self._congested = False
        finally:
            self.log.append(f"waited {anyio.current_time() - start:g}")


async def test_waiting_for_the_dispatchers_backlog_does_not_count_as_client_timeout() -> None:
    api = QuietStreamsApi(streams=1)
    supervisor = SlowToDrain(seconds=100.0)
    settings = WatchingSettings(client_timeout=10.0, reconnect_backoff=1.0)
    opened = await run_script(api, settings, supervisor)  # type: ignore[arg-type]
    # The wait for the backlog ran its 100 s; the 10 s client timeout counted only the quiet
    # time after it (then a timeout as usual, and the watch reopened after the backoff).
    assert supervisor.log == ["waited 100"]
    assert opened == [0.0, 111.0]
