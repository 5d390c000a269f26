"""The watcher's reconnect timing on Trio's virtual clock, with a scripted stand-in for the API.

End-to-end behaviour (410, dropped streams, errors) is tested on the embedded server in
``test_operator.py``; this narrow test pins down *when* the watcher reconnects, which needs a
virtual clock and a server that ends streams on cue.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import attrs
import pytest
import trio
import trio.testing

from trikopf.client.errors import ServerError
from trikopf.reactor.watching import serve_watch
from trikopf.settings import WatchingSettings
from trikopf.structs import ObjectList, Resource, Status, WatchEvent

pytestmark = pytest.mark.anyio

RESOURCE = Resource(group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample")


@pytest.fixture(params=[pytest.param("trio", id="trio-virtual-time")])
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


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


async def run_script(api: ScriptedApi, settings: WatchingSettings) -> list[float]:
    async with anyio.create_task_group() as tg:
        start = anyio.current_time()
        await tg.start(
            lambda task_status: serve_watch(
                api,  # type: ignore[arg-type]
                RESOURCE,
                None,
                supervisor=Nowhere(),
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
