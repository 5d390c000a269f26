"""Idle objects keep nothing in the supervisor but a hash of their uid, and are still known."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import pytest

from tests.clocks import virtual_time
from tests.reactor.support import event
from trikopf.processing import ObjectState, settle_own_echo
from trikopf.reactor.objects import ObjectScope, ResourceSupervisor
from trikopf.structs import WatchEvent

pytestmark = pytest.mark.anyio


@pytest.fixture(params=[pytest.param("trio", id="trio-virtual-time")])
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


class Rounds:
    """A processor that records what each round saw, and may await an echo after the first."""

    def __init__(self, *, echo: int | None = None) -> None:
        self.echo = echo
        self.seen: list[tuple[str, bool]] = []  # (resourceVersion, state.seen at the start)
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, ev: WatchEvent, state: ObjectState, scope: ObjectScope) -> None:
        self.seen.append((ev.object["metadata"]["resourceVersion"], state.seen))
        self.bodies.append(dict(ev.object))
        if self.echo is not None and not state.seen:
            state.awaiting = state.echo = self.echo  # our own PATCH, still to come back
        state.seen = True


def supervisor_for(tg: Any, rounds: Any, **options: Any) -> ResourceSupervisor[ObjectState]:
    return ResourceSupervisor(
        tg,
        rounds,
        ObjectState,
        idle_timeout=5.0,
        idle_state=ObjectState.is_idle,
        seen_state=ObjectState.seen_before,
        **options,
    )


async def test_an_idle_object_keeps_no_state_yet_is_not_new_to_its_next_round() -> None:
    rounds = Rounds()
    async with anyio.create_task_group() as tg:
        supervisor = supervisor_for(tg, rounds)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(10.0)  # far past the idle timeout
        stats = supervisor.statistics()
        assert (stats.workers, stats.objects) == (0, 1)
        assert "a" not in supervisor._states
        supervisor.dispatch(event("a", 2))
        await anyio.sleep(1.0)
        assert supervisor.statistics().objects == 1
        supervisor.stop()
    assert rounds.seen == [("1", False), ("2", True)]


async def test_an_idle_object_awaiting_its_echo_keeps_its_state_until_the_echo_settles() -> None:
    rounds = Rounds(echo=7)
    async with anyio.create_task_group() as tg:
        supervisor = supervisor_for(tg, rounds, settles=settle_own_echo)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(10.0)
        assert supervisor.statistics().workers == 0
        assert supervisor._states["a"].awaiting == 7  # the echo is still to come: kept
        supervisor.dispatch(event("a", 7))  # our own PATCH back: no round, nothing left
        assert "a" not in supervisor._states
        assert supervisor.statistics().objects == 1
        supervisor.dispatch(event("a", 8))
        await anyio.sleep(1.0)
        supervisor.stop()
    assert rounds.seen == [("1", False), ("8", True)]


async def test_a_relist_without_an_idle_object_forgets_it_entirely() -> None:
    rounds = Rounds()
    async with anyio.create_task_group() as tg:
        supervisor = supervisor_for(tg, rounds)
        supervisor.dispatch(event("a", 1, "ADDED"))
        supervisor.dispatch(event("b", 1, "ADDED"))
        await anyio.sleep(10.0)
        supervisor.forget_missing(["b"])
        assert supervisor.statistics().objects == 1
        supervisor.dispatch(
            event("a", 5, "ADDED")
        )  # a new object of the same uid, as far as we know
        supervisor.dispatch(event("b", 5))
        await anyio.sleep(1.0)
        supervisor.stop()
    assert sorted(rounds.seen[2:]) == [("5", False), ("5", True)]


async def test_an_object_waiting_for_its_retry_has_its_last_body_for_a_relist_that_misses_it() -> (
    None
):
    bodies: list[dict[str, Any]] = []

    async def process(ev: WatchEvent, state: ObjectState, scope: ObjectScope) -> float | None:
        bodies.append(ev.object)
        state.seen = True
        return 30.0 if ev.type == "ADDED" else None  # a retry ahead: the body is kept for it

    body = {"metadata": {"uid": "a", "name": "a", "resourceVersion": "3"}, "spec": {"x": [1, 2]}}
    async with anyio.create_task_group() as tg:
        supervisor = supervisor_for(tg, process)
        supervisor.dispatch(WatchEvent(type="ADDED", object=body))
        await anyio.sleep(1.0)  # the round has ended; its retry is 29 s ahead
        supervisor.forget_missing([])
        await anyio.sleep(1.0)
        assert supervisor.statistics().objects == 0
        supervisor.stop()
    assert bodies == [body, body]  # the DELETED round got the last body


class Source:
    """What an engine hands the scope as its body source: the newest body it keeps."""

    def __init__(self) -> None:
        self.raw: dict[str, Any] = {}


async def test_a_parked_object_with_a_body_source_restarts_on_the_body_kept_there() -> None:
    bodies: list[dict[str, Any]] = []
    fail = anyio.Event()
    source = Source()

    async def task() -> None:
        await fail.wait()
        if len(bodies) == 1:  # only the first one: the restarted tree's task then sleeps
            raise RuntimeError("a bug in a task of the object")
        await anyio.sleep_forever()

    async def process(ev: WatchEvent, state: ObjectState, scope: ObjectScope) -> None:
        bodies.append(ev.object)
        source.raw = ev.object  # what an engine does in every round
        scope.body_source = source
        if ev.type == "ADDED":
            scope.start_soon(task)

    body = {"metadata": {"uid": "a", "name": "a", "resourceVersion": "3"}, "spec": {"x": 1}}
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, ObjectState, idle_timeout=5.0)
        supervisor.dispatch(WatchEvent(type="ADDED", object=body))
        await anyio.sleep(10.0)
        assert supervisor.statistics().parked == 1
        assert supervisor._parked["a"].kept == ("ADDED", False, None)  # no copy of its own
        fail.set()
        await anyio.sleep(1.0)
        supervisor.stop()
        tg.cancel_scope.cancel()  # the restarted tree's task sleeps on
    assert bodies == [body, body]
    assert bodies[1] is body  # read back from the source, not parsed from a copy


async def test_an_object_going_idle_frees_its_last_event_without_a_garbage_collection() -> None:
    async def process(ev: WatchEvent, state: ObjectState, scope: ObjectScope) -> None:
        state.seen = True

    ev = event("a", 1, "ADDED")
    gone = weakref.ref(ev)
    async with anyio.create_task_group() as tg:
        supervisor = ResourceSupervisor(tg, process, ObjectState, idle_timeout=5.0)
        gc.disable()  # only reference counting: nothing in a cycle may hold the event
        try:
            supervisor.dispatch(ev)
            del ev
            await anyio.sleep(1.0)
            assert supervisor.statistics().active == 0
            assert gone() is None
        finally:
            gc.enable()
        supervisor.stop()


async def test_a_relist_that_misses_an_idle_object_with_an_event_queued_ends_it_as_deleted() -> (
    None
):
    rounds = Rounds()
    types: list[str] = []

    async def process(ev: WatchEvent, state: ObjectState, scope: ObjectScope) -> None:
        types.append(ev.type)
        await rounds(ev, state, scope)

    async with anyio.create_task_group() as tg:
        supervisor = supervisor_for(tg, process, batch_window=1.0)
        supervisor.dispatch(event("a", 1, "ADDED"))
        await anyio.sleep(10.0)  # handled, idle: no state kept, only its uid's hash
        supervisor.dispatch(event("a", 2))  # a change, in its batch window...
        supervisor.forget_missing([])  # ...when a relist finds the object gone
        await anyio.sleep(5.0)
        objects = supervisor.statistics().objects
        supervisor.stop()
    assert types == ["ADDED", "DELETED"]  # the stale change is not handled as a live object
    assert objects == 0
