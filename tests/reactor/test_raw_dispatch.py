"""The pool that feeds raw events to on.event handlers of resources with nothing else.

Unit tests with a recording handler; the first group on Trio's virtual clock, the last one on
both backends.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from tests.clocks import virtual_time
from tests.reactor.support import event
from trikopf.reactor.raw import STEP_EVENTS, RawDispatcher
from trikopf.structs import WatchEvent


class Handler:
    """Records (uid, version, start time); objects named in `slow` take `seconds` each."""

    def __init__(self, *, slow: tuple[str, ...] = (), seconds: float = 10.0) -> None:
        self.slow = slow
        self.seconds = seconds
        self.calls: list[tuple[str, str, float]] = []
        self.running: dict[str, int] = {}
        self.overlap = False
        self.changed = anyio.Event()

    async def __call__(self, ev: WatchEvent) -> None:
        uid = str(ev.uid)
        self.running[uid] = self.running.get(uid, 0) + 1
        self.overlap = self.overlap or self.running[uid] > 1
        self.calls.append((uid, str(ev.resource_version), anyio.current_time()))
        try:
            if uid in self.slow:
                await anyio.sleep(self.seconds)
        finally:
            self.running[uid] -= 1
        self.changed.set()
        self.changed = anyio.Event()

    def versions(self, uid: str) -> list[str]:
        return [v for u, v, _ in self.calls if u == uid]

    async def wait_for_calls(self, count: int) -> None:
        with anyio.fail_after(1000):
            while len(self.calls) < count:
                await self.changed.wait()


class TestOnVirtualTime:
    @pytest.fixture
    def anyio_backend(self) -> tuple[str, dict[str, Any]]:
        return virtual_time()

    async def test_events_of_one_object_are_handled_in_order_one_at_a_time(self) -> None:
        handler = Handler(slow=("a",), seconds=1.0)
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handler)
            for version in range(1, 6):
                pool.dispatch(event("a", version))
            await handler.wait_for_calls(5)
            pool.stop()
        assert handler.versions("a") == ["1", "2", "3", "4", "5"]
        assert not handler.overlap
        starts = [t for _, _, t in handler.calls]
        assert starts == sorted(starts)
        assert starts[-1] - starts[0] == pytest.approx(4.0)  # one after the other

    async def test_a_slow_handler_of_one_object_does_not_hold_up_the_others(self) -> None:
        handler = Handler(slow=("slow",), seconds=100.0)
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handler)
            start = anyio.current_time()
            pool.dispatch(event("slow", 1))
            await anyio.sleep(1.0)
            for name in ("b", "c", "d"):
                pool.dispatch(event(name, 1))
            await handler.wait_for_calls(4)
            fast_done = anyio.current_time() - start
            assert handler.running["slow"] == 1  # still in its call while the others are done
            tg.cancel_scope.cancel()
        assert fast_done == pytest.approx(1.0)
        assert [u for u, _, _ in handler.calls] == ["slow", "b", "c", "d"]

    async def test_fast_handlers_need_no_task_per_event(self) -> None:
        handler = Handler()
        most = 0
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handler)
            for round_ in range(3):
                for index in range(50):
                    pool.dispatch(event(f"o{index}", round_))
                    most = max(most, pool.statistics().workers)
                await handler.wait_for_calls(50 * (round_ + 1))
            pool.stop()
        assert most <= 2  # one worker calls them all; at most one helper waits beside it
        assert len(handler.calls) == 150

    async def test_workers_exit_when_idle_and_start_again_for_new_events(self) -> None:
        handler = Handler()
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handler, idle_timeout=5.0)
            pool.dispatch(event("a", 1))
            await handler.wait_for_calls(1)
            assert pool.statistics().workers == 1
            await anyio.sleep(6.0)
            assert pool.statistics().workers == 0
            assert pool.statistics().objects == 0  # nothing is kept per object
            pool.dispatch(event("a", 2))
            await handler.wait_for_calls(2)
            pool.stop()
        assert handler.versions("a") == ["1", "2"]

    async def test_max_workers_bounds_the_objects_served_at_once(self) -> None:
        handler = Handler(slow=("a", "b", "c"), seconds=10.0)
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handler, max_workers=2)
            start = anyio.current_time()
            for name in ("a", "b", "c"):
                pool.dispatch(event(name, 1))
            await handler.wait_for_calls(3)
            pool.stop()
        starts = {u: t - start for u, _, t in handler.calls}
        assert starts["a"] == pytest.approx(0.0)
        assert starts["b"] == pytest.approx(0.0)
        assert starts["c"] == pytest.approx(10.0)  # waited for a free worker

    async def test_stop_lets_the_running_call_finish_and_drops_what_is_queued(self) -> None:
        handler = Handler(slow=("a",), seconds=5.0)
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handler)
            pool.dispatch(event("a", 1))
            pool.dispatch(event("a", 2))
            await anyio.sleep(1.0)
            pool.stop()
            pool.dispatch(event("b", 1))
        assert [(u, v) for u, v, _ in handler.calls] == [("a", "1")]
        assert handler.running == {"a": 0}  # the running call was not cancelled
        assert pool.statistics().workers == 0

    async def test_objects_missing_from_a_relist_get_a_deleted_event(self) -> None:
        handler = Handler(slow=("a",), seconds=1.0)
        types: list[str] = []

        async def record(ev: WatchEvent) -> None:
            types.append(f"{ev.uid}:{ev.type}")
            await handler(ev)

        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, record)
            pool.dispatch(event("a", 1))
            pool.dispatch(event("a", 2))
            pool.forget_missing(["b"])
            await handler.wait_for_calls(3)
            pool.stop()
        assert types == ["a:MODIFIED", "a:MODIFIED", "a:DELETED"]


async def test_a_bug_while_handling_is_logged_and_the_next_event_is_handled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    done = anyio.Event()

    async def handle(ev: WatchEvent) -> None:
        seen.append(str(ev.resource_version))
        if ev.resource_version == "1":
            raise RuntimeError("a bug in the raw path")
        done.set()

    with caplog.at_level(logging.ERROR, logger="trikopf.reactor"):
        async with anyio.create_task_group() as tg:
            pool = RawDispatcher(tg, handle)
            pool.dispatch(event("a", 1))
            pool.dispatch(event("a", 2))
            with anyio.fail_after(5):
                await done.wait()
            pool.stop()
    assert seen == ["1", "2"]
    assert pool.statistics().restarts == 1
    assert "a bug in the raw path" in caplog.text


async def test_the_backlog_limit_makes_the_pool_congested_until_half_is_handled() -> None:
    gate = anyio.Event()
    handled: list[str] = []
    all_handled = anyio.Event()

    async def handle(ev: WatchEvent) -> None:
        await gate.wait()
        handled.append(str(ev.resource_version))
        if len(handled) == 4:
            all_handled.set()

    released = anyio.Event()

    async def wait_then_note(pool: RawDispatcher) -> None:
        await pool.wait_uncongested()
        released.set()

    async with anyio.create_task_group() as tg:
        pool = RawDispatcher(tg, handle, backlog_limit=4)
        for version in range(1, 4):
            pool.dispatch(event("a", version))
        assert not pool.congested()
        await pool.wait_uncongested()  # not congested: returns at once
        pool.dispatch(event("b", 4))
        assert pool.congested()
        tg.start_soon(wait_then_note, pool)
        gate.set()
        with anyio.fail_after(5):
            await released.wait()
        # Released once no more than half of the limit is still queued.
        assert len(handled) >= 2
        assert not pool.congested()
        with anyio.fail_after(5):
            await all_handled.wait()
        pool.stop()
    assert sorted(handled) == ["1", "2", "3", "4"]


async def test_stopping_releases_a_watcher_waiting_for_a_congested_pool() -> None:
    never = anyio.Event()

    async def handle(ev: WatchEvent) -> None:
        await never.wait()

    async with anyio.create_task_group() as tg:
        pool = RawDispatcher(tg, handle, backlog_limit=1)
        pool.dispatch(event("a", 1))
        assert pool.congested()
        pool.stop()
        with anyio.fail_after(5):
            await pool.wait_uncongested()
        assert not pool.congested()
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("objects", [1, 300], ids=["one-object", "many-objects"])
async def test_handlers_that_never_wait_still_let_other_tasks_run(objects: int) -> None:
    # 300 queued events whose handler returns without a checkpoint: the workers must not
    # handle them all in one step of the event loop (that would stall the watcher for long).
    handler = Handler()
    gaps: list[int] = []

    async def watch_progress() -> None:
        last = 0
        while len(handler.calls) < 300:
            await anyio.lowlevel.checkpoint()
            gaps.append(len(handler.calls) - last)
            last = len(handler.calls)

    async with anyio.create_task_group() as tg:
        pool = RawDispatcher(tg, handler)
        for version in range(300):
            pool.dispatch(event(f"o{version % objects}", version))
        tg.start_soon(watch_progress)
        await handler.wait_for_calls(300)
        most = pool.statistics().workers
        pool.stop()
    assert len(handler.calls) == 300
    assert most <= 2  # a pause between steps is not a waiting handler: no more helpers
    # Between two steps of another task, each worker (the one and its helper) ran one step,
    # or two when the other task ran first in one batch of the loop and last in the next.
    assert max(gaps) <= 4 * STEP_EVENTS < 300
    if objects == 1:
        assert handler.versions("o0") == [str(v) for v in range(300)]


async def test_a_busy_object_does_not_hold_up_an_object_that_comes_in_meanwhile() -> None:
    # Object a gets more events per step of the loop than one step handles, so its queue never
    # runs dry while they come in; b's one event, arriving during a pause, goes in between.
    handler = Handler()
    steps = 20

    async def feed_a(pool: RawDispatcher) -> None:
        for step in range(steps):
            for index in range(40):
                pool.dispatch(event("a", 40 * (step + 1) + index))
            if step == 1:
                pool.dispatch(event("b", 1))
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        pool = RawDispatcher(tg, handler)
        for version in range(40):
            pool.dispatch(event("a", version))
        tg.start_soon(feed_a, pool)
        await handler.wait_for_calls(40 * (steps + 1) + 1)
        pool.stop()
    order = [u for u, _, _ in handler.calls]
    assert order.index("b") < 4 * STEP_EVENTS  # not after all of a's 840 events
    assert handler.versions("a") == [str(v) for v in range(40 * (steps + 1))]
    assert not handler.overlap


SEEN_BY: contextvars.ContextVar[str] = contextvars.ContextVar("seen_by", default="nobody")


async def test_context_variables_set_by_a_handler_do_not_reach_other_objects() -> None:
    found: list[tuple[str, str]] = []

    async def handler(ev: WatchEvent) -> None:
        found.append((str(ev.uid), SEEN_BY.get()))
        SEEN_BY.set(str(ev.uid))

    async with anyio.create_task_group() as tg:
        pool = RawDispatcher(tg, handler)
        for name in ("a", "b", "a"):
            pool.dispatch(event(name, 1))
        with anyio.fail_after(10):
            while len(found) < 3:
                await anyio.lowlevel.checkpoint()
        pool.stop()
    assert sorted(found) == [("a", "nobody"), ("a", "nobody"), ("b", "nobody")]
