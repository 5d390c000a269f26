"""The pool of round workers of an object supervisor, on both backends.

What the pool changes against a task per object: rounds of one object still never overlap and
the newest body wins; objects are served first come first served; a slow handler holds up only
the worker it runs in (up to ``max_workers``); a worker whose rounds never wait lets the event
loop run; deleting an object still cancels its scope.
"""

from __future__ import annotations

import contextvars
import math

import anyio
import anyio.lowlevel

from tests.reactor.support import event
from trikopf.reactor.objects import ObjectScope, ResourceSupervisor
from trikopf.structs import WatchEvent


class Rounds:
    """Records (uid, version) per round; rounds of the objects in ``held`` wait for ``release``."""

    def __init__(self, *, held: tuple[str, ...] = (), checkpoints: int = 1) -> None:
        self.held = held
        self.checkpoints = checkpoints
        self.release = anyio.Event()
        self.seen: list[tuple[str, str]] = []
        self.running: dict[str, int] = {}
        self.overlap = False
        self.changed = anyio.Event()

    async def __call__(self, ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        uid = str(ev.uid)
        self.running[uid] = self.running.get(uid, 0) + 1
        self.overlap = self.overlap or self.running[uid] > 1
        try:
            if uid in self.held:
                await self.release.wait()
            for _ in range(self.checkpoints):
                await anyio.lowlevel.checkpoint()
        finally:
            self.running[uid] -= 1
        self.seen.append((uid, str(ev.resource_version)))
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(10):
            while len(self.seen) < count:
                await self.changed.wait()

    def versions(self, uid: str) -> list[int]:
        return [int(version) for seen_uid, version in self.seen if seen_uid == uid]


async def test_rounds_of_one_object_never_overlap_and_the_newest_body_wins() -> None:
    rounds = Rounds(checkpoints=3)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, rounds, list)
        for version in range(1, 51):
            for uid in ("a", "b", "c"):
                supervisor.dispatch(event(uid, version))
            await anyio.lowlevel.checkpoint()
        with anyio.fail_after(10):
            while any(not rounds.versions(uid) or rounds.versions(uid)[-1] != 50 for uid in "abc"):
                await rounds.changed.wait()
        supervisor.stop()
    assert not rounds.overlap
    for uid in "abc":
        versions = rounds.versions(uid)
        assert versions == sorted(set(versions))  # in order, none twice
        assert versions[-1] == 50
        assert len(versions) < 50  # coalesced: rounds saw only the newest body
    assert supervisor.statistics().waiting == 0


async def test_objects_are_served_first_come_first_served() -> None:
    rounds = Rounds(held=("a",))
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, rounds, list, max_workers=1)
        for uid in "abcde":
            supervisor.dispatch(event(uid, 1))
        with anyio.fail_after(10):
            while rounds.running.get("a") != 1:
                await anyio.lowlevel.checkpoint()
        supervisor.dispatch(event("a", 2))  # behind the objects that came before it
        supervisor.dispatch(event("b", 2))  # b waits in the line: coalesced there
        rounds.held = ()
        rounds.release.set()
        await rounds.wait_for(6)
        supervisor.stop()
    assert rounds.seen == [("a", "1"), ("b", "2"), ("c", "1"), ("d", "1"), ("e", "1"), ("a", "2")]


async def test_a_slow_handler_holds_up_only_its_own_worker() -> None:
    rounds = Rounds(held=("slow",))
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, rounds, list)
        supervisor.dispatch(event("slow", 1))
        for n in range(20):
            supervisor.dispatch(event(f"fast{n}", 1))
        await rounds.wait_for(20)  # every other object, while the slow round still waits
        assert rounds.running["slow"] == 1
        assert 2 <= supervisor.statistics().workers <= 21
        rounds.release.set()
        await rounds.wait_for(21)
        supervisor.stop()
    assert rounds.seen[-1] == ("slow", "1")


async def test_max_workers_bounds_the_pool_and_slow_rounds_fill_it() -> None:
    rounds = Rounds(held=("slow1", "slow2"))
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, rounds, list, max_workers=2)
        supervisor.dispatch(event("slow1", 1))
        supervisor.dispatch(event("slow2", 1))
        supervisor.dispatch(event("fast", 1))
        with anyio.fail_after(10):
            while rounds.running.get("slow1") != 1 or rounds.running.get("slow2") != 1:
                await anyio.lowlevel.checkpoint()
        for _ in range(10):
            await anyio.lowlevel.checkpoint()
        assert rounds.seen == []  # both workers wait in slow rounds: "fast" waits its turn
        assert supervisor.statistics().workers == 2
        assert supervisor.statistics().waiting == 3
        rounds.release.set()
        await rounds.wait_for(3)
        supervisor.stop()
    assert rounds.seen[-1] == ("fast", "1")


async def test_a_worker_whose_rounds_never_wait_lets_the_event_loop_run() -> None:
    rounds = Rounds(checkpoints=0)

    async def instant(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        rounds.seen.append((str(ev.uid), str(ev.resource_version)))

    observed: list[int] = []
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, instant, list, max_workers=1)
        for n in range(200):
            supervisor.dispatch(event(f"o{n}", 1))
        with anyio.fail_after(10):
            while len(rounds.seen) < 200:
                observed.append(len(rounds.seen))
                await anyio.lowlevel.checkpoint()
        supervisor.stop()
    assert any(0 < count < 200 for count in observed)


async def test_a_deleted_object_cancels_its_scope_while_other_objects_go_on() -> None:
    cancelled = anyio.Event()
    others = Rounds()

    async def daemon() -> None:
        try:
            await anyio.sleep(math.inf)
        finally:
            cancelled.set()

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        if ev.uid != "d":
            await others(ev, state, scope)
        elif ev.type == "ADDED":
            scope.start_soon(daemon)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, idle_timeout=0.5)
        supervisor.dispatch(event("d", 1, "ADDED"))
        supervisor.dispatch(event("x", 1))
        await others.wait_for(1)
        with anyio.fail_after(10):
            while supervisor.statistics().parked != 1:
                await anyio.lowlevel.checkpoint()
        supervisor.dispatch(event("d", 2, "DELETED"))
        supervisor.dispatch(event("y", 1))
        with anyio.fail_after(10):
            await cancelled.wait()
        await others.wait_for(2)
        with anyio.fail_after(10):
            while supervisor.statistics().objects != 2:
                await anyio.lowlevel.checkpoint()
        supervisor.stop()
    assert [uid for uid, _ in others.seen] == ["x", "y"]


SEEN_BY: contextvars.ContextVar[str] = contextvars.ContextVar("seen_by", default="nobody")


async def test_context_variables_set_by_one_objects_handlers_stay_with_that_round() -> None:
    """Rounds share worker tasks, not their context: as with a task per object."""
    found: dict[str, str] = {}
    in_daemon: dict[str, str] = {}

    async def daemon(uid: str) -> None:
        in_daemon[uid] = SEEN_BY.get()

    async def process(ev: WatchEvent, state: list[str], scope: ObjectScope) -> None:
        uid = str(ev.uid)
        found[uid] = SEEN_BY.get()
        SEEN_BY.set(uid)  # e.g. a logging library's bound fields
        await anyio.lowlevel.checkpoint()
        scope.start_soon(daemon, uid)

    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, list, max_workers=1)
        for uid in "abc":
            supervisor.dispatch(event(uid, 1))
        with anyio.fail_after(10):
            while len(in_daemon) < 3:
                await anyio.lowlevel.checkpoint()
        supervisor.stop()
    assert found == {"a": "nobody", "b": "nobody", "c": "nobody"}
    assert in_daemon == {"a": "a", "b": "b", "c": "c"}  # its own round's values only
    assert SEEN_BY.get() == "nobody"


async def test_an_object_busy_with_new_events_keeps_one_worker() -> None:
    rounds = Rounds(checkpoints=2)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, rounds, list, idle_timeout=math.inf)
        for version in range(1, 41):
            supervisor.dispatch(event("a", version))
            await anyio.lowlevel.checkpoint()  # during the round: the next round is queued
        with anyio.fail_after(10):
            while not rounds.versions("a") or rounds.versions("a")[-1] != 40:
                await rounds.changed.wait()
        workers = supervisor.statistics().workers
        supervisor.stop()
    assert workers == 1
