"""Backpressure: the watcher stops reading while its dispatcher says it is congested.

On the embedded API server over real HTTP, with a dispatcher that records what the watcher does.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio
import attrs

from tests import kopfexample
from trikopf.client import ApiClient
from trikopf.reactor.watching import serve_watch
from trikopf.settings import WatchingSettings
from trikopf.structs import WatchEvent


@attrs.define
class Congestible:
    """Records what the watcher does; congested from the first dispatched event on, until let go."""

    log: list[str] = attrs.field(factory=list)
    waiting: anyio.Event = attrs.field(factory=anyio.Event)
    let_go: anyio.Event = attrs.field(factory=anyio.Event)
    seen: anyio.Event = attrs.field(factory=anyio.Event)

    def dispatch(self, event: WatchEvent) -> None:
        self.log.append(f"dispatch {event.name}")
        if event.name == "b":
            self.seen.set()

    def forget_missing(self, present: Iterable[str]) -> None:
        pass

    def congested(self) -> bool:
        return bool(self.log) and not self.let_go.is_set()

    async def wait_uncongested(self) -> None:
        self.log.append("wait")
        self.waiting.set()
        await self.let_go.wait()
        self.log.append("go on")


async def test_the_watcher_stops_reading_while_the_dispatcher_is_congested(
    client: ApiClient,
) -> None:
    kex = await kopfexample.create_kopfexamples(client, kopfexample.crd())
    dispatcher = Congestible()
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda task_status: serve_watch(
                client,
                kex,
                "default",
                supervisor=dispatcher,
                settings=WatchingSettings(allow_bookmarks=False),
                task_status=task_status,
            )
        )
        await client.create(kex, kopfexample.body("a"), namespace="default")
        with anyio.fail_after(10):
            await dispatcher.waiting.wait()
        # The watcher waits: nothing more is read, so "b" is not dispatched before "go on".
        await client.create(kex, kopfexample.body("b"), namespace="default")
        assert dispatcher.log == ["dispatch a", "wait"]
        dispatcher.let_go.set()
        with anyio.fail_after(10):
            await dispatcher.seen.wait()
        tg.cancel_scope.cancel()
    assert dispatcher.log == ["dispatch a", "wait", "go on", "dispatch b"]
