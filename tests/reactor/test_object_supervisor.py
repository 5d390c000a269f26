"""The per-object supervisor on its own, with a recording processor, on Trio's virtual clock."""

from __future__ import annotations

import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import attrs
import pytest

from tests.clocks import virtual_time
from tests.reactor.support import event
from trikopf.reactor.objects import ObjectScope, ResourceSupervisor
from trikopf.structs import WatchEvent

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[pytest.param("trio", id="trio-virtual-time")])
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


def daemon_on_added(
    daemon: Callable[[], Awaitable[None]], seen: list[WatchEvent] | None = None
) -> Callable[[WatchEvent, list[str], ObjectScope], Awaitable[None]]:
    """A processor that starts ``daemon`` in the object's scope on ADDED (recording into ``seen``)."""

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        if seen is not None:
            seen.append(ev)
        if ev.type == "ADDED":
            scope.start_soon(daemon)

    return process


@attrs.define
class Recorder:
    """Records rounds; each round takes `duration` seconds and asks for `delays` in turn."""

    duration: float = 1.0
    delays: list[float | None] = attrs.field(factory=list)
    rounds: list[tuple[str, str, float]] = attrs.field(factory=list)
    running: int = 0
    max_running: int = 0
    changed: anyio.Event = attrs.field(factory=anyio.Event)

    async def __call__(self, ev: WatchEvent, state: list[str], scope: ObjectScope) -> float | None:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await anyio.sleep(self.duration)
        finally:
            self.running -= 1
        state.append(str(ev.resource_version))
        self.rounds.append((str(ev.uid), str(ev.resource_version), anyio.current_time()))
        self.changed.set()
        self.changed = anyio.Event()
        return self.delays.pop(0) if self.delays else None

    async def wait_for_rounds(self, count: int) -> None:
        with anyio.fail_after(1000):
            while len(self.rounds) < count:
                await self.changed.wait()


async def test_burst_of_events_is_coalesced_and_newest_body_wins() -> None:
    recorder = Recorder(duration=1.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, batch_window=0.1)
        supervisor.dispatch(event("a", 1))
        await anyio.sleep(0.5)  # the first round is running now (virtual time)
        for version in range(2, 10):
            supervisor.dispatch(event("a", version))
        await recorder.wait_for_rounds(2)
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1", "9"]
    assert recorder.max_running == 1
    assert supervisor.statistics().waiting == 0


async def test_rounds_of_different_objects_run_concurrently_within_the_limit() -> None:
    recorder = Recorder(duration=10.0)
    limiter = anyio.CapacityLimiter(3)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, limiter=limiter)
        started = anyio.current_time()
        for n in range(9):
            supervisor.dispatch(event(f"o{n}", 1))
        await recorder.wait_for_rounds(9)
        supervisor.stop()
    assert recorder.max_running == 3
    # Three waves of three rounds of 10 s each.
    assert max(r[2] for r in recorder.rounds) - started == pytest.approx(30.0)


async def test_idle_object_releases_its_task_and_keeps_its_state() -> None:
    recorder = Recorder(duration=0.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, idle_timeout=5.0)
        supervisor.dispatch(event("a", 1))
        await recorder.wait_for_rounds(1)
        assert supervisor.statistics().workers == 1
        await anyio.sleep(5.1)
        assert supervisor.statistics().workers == 0
        assert supervisor.statistics().objects == 1
        supervisor.dispatch(event("a", 2))
        await recorder.wait_for_rounds(2)
        supervisor.stop()
    assert supervisor._states["a"] == ["1", "2"]


async def test_requested_delay_schedules_a_retry_round_with_the_last_body() -> None:
    recorder = Recorder(duration=0.0, delays=[30.0, None])
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, idle_timeout=5.0)
        start = anyio.current_time()
        supervisor.dispatch(event("a", 1))
        await recorder.wait_for_rounds(2)
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1", "1"]
    assert recorder.rounds[1][2] - start == pytest.approx(30.0)


async def test_new_event_wakes_a_delayed_object_early() -> None:
    recorder = Recorder(duration=0.0, delays=[30.0, None])
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list)
        start = anyio.current_time()
        supervisor.dispatch(event("a", 1))
        await recorder.wait_for_rounds(1)
        await anyio.sleep(3.0)
        supervisor.dispatch(event("a", 2))
        await recorder.wait_for_rounds(2)
        await anyio.sleep(60.0)
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1", "2"]
    assert recorder.rounds[1][2] - start == pytest.approx(3.0)


async def test_deleted_object_cancels_its_scope_and_forgets_its_state() -> None:
    cancelled = anyio.Event()

    async def daemon() -> None:
        try:
            await anyio.sleep(math.inf)
        finally:
            cancelled.set()

    process = daemon_on_added(daemon)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=1.0)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(100.0)
        # The worker went idle; the running daemon and the object's scope stay.
        assert supervisor.statistics().workers == 0
        assert supervisor.statistics().objects == 1
        assert not cancelled.is_set()
        supervisor.dispatch(event("a", 2, "DELETED"))
        with anyio.fail_after(10):
            await cancelled.wait()
        await anyio.sleep(0.1)
        assert supervisor.statistics().objects == 0
        supervisor.stop()


async def test_bug_in_one_object_is_logged_and_its_tree_restarted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, str]] = []
    done = anyio.Event()

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        seen.append((str(ev.uid), str(ev.resource_version)))
        state.append("x")
        if ev.uid == "bad" and len(state) == 1:
            raise RuntimeError("boom")
        if ev.uid == "bad":
            done.set()

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list)
        supervisor.dispatch(event("bad", 1))
        supervisor.dispatch(event("good", 1))
        with anyio.fail_after(100):
            await done.wait()
        supervisor.stop()
    assert ("good", "1") in seen
    assert seen.count(("bad", "1")) == 2
    assert supervisor.statistics().restarts == 1
    assert "restarting that tree" in caplog.text


async def test_stop_lets_the_running_round_finish_and_refuses_new_events() -> None:
    recorder = Recorder(duration=5.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list)
        supervisor.dispatch(event("a", 1))
        await anyio.sleep(1.0)
        supervisor.stop()
        supervisor.dispatch(event("a", 2))
        supervisor.dispatch(event("b", 1))
    assert [r[:2] for r in recorder.rounds] == [("a", "1")]
    assert supervisor.statistics().workers == 0


async def test_raw_handlers_see_every_event_in_order_and_the_first_without_the_batch_wait() -> None:
    recorder = Recorder(duration=1.0)
    raw_seen: list[tuple[str, float]] = []

    async def raw(ev: WatchEvent) -> None:
        raw_seen.append((str(ev.resource_version), anyio.current_time()))

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, raw=raw, batch_window=2.0)
        start = anyio.current_time()
        supervisor.dispatch(event("a", 1))
        await anyio.sleep(0.5)
        supervisor.dispatch(event("a", 2))
        supervisor.dispatch(event("a", 3))
        await recorder.wait_for_rounds(1)
        supervisor.stop()
    assert [v for v, _ in raw_seen] == ["1", "2", "3"]
    assert raw_seen[0][1] - start == pytest.approx(0.0)
    # The round waited for the burst to settle and saw only its newest body.
    assert [r[1] for r in recorder.rounds] == ["3"]
    assert recorder.rounds[0][2] - start == pytest.approx(3.0)


async def test_task_that_crashes_in_the_object_scope_restarts_the_tree(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds: list[str] = []
    sibling_cancelled = anyio.Event()
    second_round = anyio.Event()

    async def sibling() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            sibling_cancelled.set()

    async def crashing() -> None:
        await anyio.sleep(1.0)
        raise RuntimeError("a bug in an engine")

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        rounds.append(str(ev.resource_version))
        if len(rounds) == 1:
            scope.start_soon(sibling)
            scope.start_soon(crashing)
        else:
            second_round.set()

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=0.5)
        supervisor.dispatch(event("a", 1))
        with anyio.fail_after(100):
            await sibling_cancelled.wait()
            await second_round.wait()
        supervisor.stop()
    # The tree's other task was cancelled and the last event processed again.
    assert rounds == ["1", "1"]
    assert supervisor.statistics().restarts == 1
    assert supervisor.statistics().waiting == 0
    assert "a bug in an engine" in caplog.text


async def test_tasks_of_a_deleted_object_are_cancelled_and_none_start_afterwards() -> None:
    started: list[str] = []
    scopes: list[ObjectScope] = []

    async def task(label: str) -> None:
        started.append(label)
        await anyio.sleep_forever()

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        scopes.append(scope)
        if ev.type == "ADDED":
            scope.start_soon(task, "while alive")

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(1.0)
        supervisor.dispatch(event("a", 2, "DELETED"))
        await anyio.sleep(1.0)
        assert scopes[-1].active == 0
        scopes[-1].start_soon(task, "after deletion")
        await anyio.sleep(1.0)
        supervisor.stop()
    assert started == ["while alive"]


def _settles_version(settled: str) -> Any:
    """A `settles` predicate: the event with resourceVersion `settled` needs no round."""

    def settles(ev: WatchEvent, state: list[str]) -> bool:
        if str(ev.resource_version) != settled:
            return False
        state.append(f"settled {settled}")
        return True

    return settles


async def test_an_event_that_settles_runs_no_round_and_wakes_no_worker() -> None:
    recorder = Recorder(duration=0.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(
            tg, recorder, list, idle_timeout=5.0, batch_window=0.1, settles=_settles_version("2")
        )
        supervisor.dispatch(event("a", 1))
        await recorder.wait_for_rounds(1)
        supervisor.dispatch(event("a", 2))  # the worker is waiting: it is not even woken
        await anyio.sleep(5.1)
        assert supervisor.statistics().workers == 0
        supervisor.dispatch(event("a", 2))  # an idle object: no worker is started for it
        assert supervisor.statistics().workers == 0
        supervisor.dispatch(event("a", 3))
        await recorder.wait_for_rounds(2)
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1", "3"]
    assert supervisor._states["a"] == ["1", "settled 2", "settled 2", "3"]
    assert supervisor.statistics().rounds == 2


async def test_an_event_that_settles_is_coalesced_when_another_is_queued() -> None:
    recorder = Recorder(duration=1.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(
            tg, recorder, list, batch_window=0.1, settles=_settles_version("3")
        )
        supervisor.dispatch(event("a", 1))
        await anyio.sleep(0.5)  # the first round runs
        supervisor.dispatch(event("a", 2))  # queued for the next round
        supervisor.dispatch(event("a", 3))  # not asked: the newest body goes to the round
        await recorder.wait_for_rounds(2)
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1", "3"]
    assert supervisor._states["a"] == ["1", "3"]


async def test_a_new_object_is_never_asked_whether_it_settles() -> None:
    recorder = Recorder(duration=0.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, settles=_settles_version("1"))
        supervisor.dispatch(event("a", 1))  # no state yet: the first round always runs
        await recorder.wait_for_rounds(1)
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1"]


async def test_batch_windows_of_many_objects_end_on_time_and_idle_workers_exit() -> None:
    recorder = Recorder(duration=0.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, idle_timeout=5.0, batch_window=0.5)
        start = anyio.current_time()
        for n in range(5):
            supervisor.dispatch(event(f"o{n}", 1))
        await anyio.sleep(0.2)
        for n in range(5, 10):
            supervisor.dispatch(event(f"o{n}", 1))
        supervisor.dispatch(event("o0", 2))  # within o0's window: coalesced, not a new window
        await recorder.wait_for_rounds(10)
        stats = supervisor.statistics()
        assert stats.active == 0  # the objects hold nothing after their round
        assert 1 <= stats.workers < 10  # a pool, not a task per object
        await anyio.sleep(4.9)
        assert supervisor.statistics().workers >= 1
        await anyio.sleep(0.2)  # idle for more than 5 s since the last round
        assert supervisor.statistics().workers == 0
    assert supervisor.statistics().waiting == 0
    times = sorted(round(r[2] - start, 6) for r in recorder.rounds)
    assert times == [0.5] * 5 + [0.7] * 5
    assert sorted(r[1] for r in recorder.rounds if r[0] == "o0") == ["2"]


async def test_stop_ends_the_batch_windows_that_are_running() -> None:
    recorder = Recorder(duration=0.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, batch_window=100.0)
        start = anyio.current_time()
        for n in range(3):
            supervisor.dispatch(event(f"o{n}", 1))
        await anyio.sleep(1.0)
        supervisor.stop()
    assert anyio.current_time() - start == pytest.approx(1.0)
    assert recorder.rounds == []
    assert supervisor.statistics().workers == 0
    assert supervisor.statistics().waiting == 0


async def test_a_daemon_object_holds_no_worker_and_its_next_round_takes_over_the_scope() -> None:
    scopes: list[ObjectScope] = []
    daemon_ended = anyio.Event()
    release = anyio.Event()

    async def daemon() -> None:
        try:
            await release.wait()
        finally:
            daemon_ended.set()

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        scopes.append(scope)
        state.append(str(ev.resource_version))
        if ev.type == "ADDED":
            scope.start_soon(daemon)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=1.0)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(10.0)
        stats = supervisor.statistics()
        assert (stats.workers, stats.parked, stats.objects) == (0, 1, 1)
        supervisor.dispatch(event("a", 2))
        stats = supervisor.statistics()
        assert (stats.active, stats.parked) == (1, 0)  # its round ahead takes the scope
        await anyio.sleep(0.1)
        assert scopes[0] is scopes[1]  # the same tree: the daemon was not restarted
        assert scopes[0].active == 1
        assert supervisor.statistics().parked == 1
        release.set()  # the daemon ends on its own: nothing of the object runs any more
        await daemon_ended.wait()
        await anyio.sleep(0.1)
        stats = supervisor.statistics()
        assert (stats.active, stats.parked, stats.objects) == (0, 0, 1)
        supervisor.stop()
    assert supervisor._states["a"] == ["1", "2"]


async def test_stop_reaches_the_tasks_of_objects_without_a_worker() -> None:
    stopping_seen = anyio.Event()

    async def daemon(scope: ObjectScope) -> None:
        await scope.stopping.wait()
        stopping_seen.set()

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        scope.start_soon(daemon, scope)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=1.0)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(10.0)
        assert supervisor.statistics().parked == 1
        supervisor.stop()
        with anyio.fail_after(1.0):
            await stopping_seen.wait()
    assert supervisor.statistics().parked == 0


async def test_a_deleted_object_without_a_worker_cancels_its_daemons() -> None:
    cancelled = anyio.Event()

    async def daemon() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    process = daemon_on_added(daemon)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=1.0)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(10.0)
        assert supervisor.statistics().parked == 1
        supervisor.forget_missing([])  # a relist without it: deleted while we were blind
        with anyio.fail_after(10.0):
            await cancelled.wait()
        await anyio.sleep(0.1)
        assert supervisor.statistics().objects == 0
        supervisor.stop()


async def test_too_many_events_waiting_for_or_in_a_round_is_congestion_until_half_are_done() -> (
    None
):
    recorder = Recorder(duration=10.0)
    limiter = anyio.CapacityLimiter(2)
    released: list[float] = []
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(
            tg, recorder, list, limiter=limiter, batch_window=1.0, backlog_limit=4
        )
        start = anyio.current_time()
        for n in range(3):
            supervisor.dispatch(event(f"o{n}", 1))
        assert not supervisor.congested()
        supervisor.dispatch(event("o0", 2))  # coalesced: the same object waits
        assert not supervisor.congested()
        for n in range(3, 6):
            supervisor.dispatch(event(f"o{n}", 1))
        assert supervisor.congested()

        async def watcher() -> None:
            await supervisor.wait_uncongested()
            released.append(anyio.current_time() - start)

        tg.start_soon(watcher)
        await recorder.wait_for_rounds(6)
        assert not supervisor.congested()
        supervisor.stop()
    # After the window two rounds start (4 wait, 2 in flight); at 11 s they end and two more
    # start (2 wait, 2 in flight: still 4 held); at 21 s two more end (2 held: half of 4).
    assert released == [pytest.approx(21.0)]
    assert supervisor.statistics().waiting == 0


async def test_a_stopping_supervisor_is_never_congested() -> None:
    recorder = Recorder(duration=0.0)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, batch_window=100.0, backlog_limit=1)
        supervisor.dispatch(event("a", 1))
        assert supervisor.congested()
        tg.start_soon(supervisor.wait_uncongested)
        await anyio.sleep(1.0)
        supervisor.stop()
        assert not supervisor.congested()
    assert recorder.rounds == []


async def test_a_parked_tree_that_crashes_reruns_an_equal_copy_of_its_last_event() -> None:
    seen: list[WatchEvent] = []
    rerun = anyio.Event()

    async def crashing() -> None:
        await anyio.sleep(5.0)  # the worker parks first (idle_timeout below)
        raise RuntimeError("a bug in a daemon")

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        seen.append(ev)
        if len(seen) == 1:
            scope.start_soon(crashing)
        else:
            rerun.set()

    first = WatchEvent(
        type="ADDED",
        object={
            "metadata": {"uid": "a", "name": "a", "resourceVersion": "7"},
            "spec": {"items": [1, 2.5, "three", None, {"nested": True}]},
        },
        listed=True,
    )
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=1.0)
        supervisor.dispatch(first)
        await anyio.sleep(2.0)
        assert supervisor.statistics().parked == 1
        with anyio.fail_after(100):
            await rerun.wait()
        supervisor.stop()
    again = seen[1]
    assert (again.type, again.listed, again.object) == (first.type, first.listed, first.object)
    assert supervisor.statistics().restarts == 1


class _WeakBody(dict[str, Any]):
    """A body that a weak reference can follow (plain dicts cannot be referenced weakly)."""


async def test_a_deleted_object_keeps_no_body_while_an_earlier_idle_wait_is_still_timed() -> None:
    import gc
    import weakref

    recorder = Recorder(duration=0.1)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, idle_timeout=100.0)
        added = _WeakBody(metadata={"uid": "a", "name": "a", "resourceVersion": "1"})
        supervisor.dispatch(WatchEvent(type="ADDED", object=added))
        await recorder.wait_for_rounds(1)
        await anyio.sleep(1.0)  # the worker waits idle now, its deadline 100 s away
        deleted = _WeakBody(metadata={"uid": "a", "name": "a", "resourceVersion": "2"})
        supervisor.dispatch(WatchEvent(type="DELETED", object=deleted))  # an early wake
        await recorder.wait_for_rounds(2)
        await anyio.sleep(1.0)  # the worker has ended; the idle wait's deadline has not passed
        refs = [weakref.ref(added), weakref.ref(deleted)]
        del added, deleted
        recorder.rounds.clear()
        gc.collect()
        assert [ref() for ref in refs] == [None, None]
        assert supervisor.statistics().objects == 0
        supervisor.stop()


async def test_an_object_with_an_infinite_idle_timeout_serves_every_event_in_order() -> None:
    recorder = Recorder(duration=0.1)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, recorder, list, idle_timeout=math.inf)
        for version in range(1, 6):
            supervisor.dispatch(event("a", version))
            await recorder.wait_for_rounds(version)
            await anyio.sleep(1.0)  # idle between events: each event wakes it early
        assert supervisor.statistics().workers == 1  # never idle: the worker stays
        supervisor.stop()
    assert [r[1] for r in recorder.rounds] == ["1", "2", "3", "4", "5"]


async def test_a_parked_object_whose_body_is_not_plain_json_keeps_it_parsed() -> None:
    seen: list[WatchEvent] = []

    async def daemon() -> None:
        await anyio.sleep_forever()

    process = daemon_on_added(daemon, seen)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=1.0)
        body = {"metadata": {"uid": "a", "name": "a"}, "spec": {"tags": {"x", "y"}}}
        supervisor.dispatch(WatchEvent(type="ADDED", object=body))
        await anyio.sleep(10.0)  # the worker went idle and parked: the daemon still runs
        stats = supervisor.statistics()
        assert (stats.parked, stats.workers, stats.restarts) == (1, 0, 0)
        supervisor.dispatch(event("a", 2))
        await anyio.sleep(10.0)
        assert [e.type for e in seen] == ["ADDED", "MODIFIED"]
        assert supervisor.statistics().restarts == 0
        supervisor.stop()
        tg.cancel_scope.cancel()  # the daemon sleeps until cancelled


async def test_the_bug_backoff_doubles_for_bugs_in_a_row_only() -> None:
    """An object whose tree lives on (a daemon) keeps its slot: a good round resets the backoff."""
    restarts: list[float] = []
    bugs_ahead = {"1": 2, "2": 1}  # version 1 fails twice in a row; version 2 once

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        version = str(ev.resource_version)
        restarts.append(anyio.current_time())
        if not scope.active:
            scope.start_soon(anyio.sleep_forever)  # the tree outlives every good round
        if bugs_ahead.get(version, 0) > 0:
            bugs_ahead[version] -= 1
            raise RuntimeError("boom")

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list)
        supervisor.dispatch(event("a", 1))
        with anyio.fail_after(100):
            while len(restarts) < 3:
                await anyio.sleep(0.1)
        await anyio.sleep(100)  # long after: the next bug is not "in a row"
        supervisor.dispatch(event("a", 2))
        with anyio.fail_after(100):
            while len(restarts) < 5:
                await anyio.sleep(0.1)
        tg.cancel_scope.cancel()
    waits = [round(b - a, 1) for a, b in itertools.pairwise(restarts)]
    assert waits[:2] == [1.0, 2.0]  # two bugs in a row: 1 s, then 2 s
    assert waits[3] == 1.0  # after a good round the first bug waits 1 s again


async def test_retry_waits_ended_early_do_not_pile_up_in_the_clock() -> None:
    """A long retry cut short by events again and again keeps a bounded number of timers."""

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> float:
        return 600.0  # retry in ten minutes (a new event ends the wait early)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list)
        for version in range(1, 1001):
            supervisor.dispatch(event("a", version))
            await anyio.sleep(1.0)
        timers = len(supervisor._timers)
        tg.cancel_scope.cancel()
    assert supervisor.statistics().rounds >= 999
    assert timers <= 64  # not one per early-ended wait (a thousand)
