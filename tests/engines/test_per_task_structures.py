"""The small per-daemon pieces: a stop flag whose event is made on first wait, one cancel scope."""

from __future__ import annotations

import anyio
import pytest

from trikopf._util.tasks import start_soon_lean
from trikopf.engines.stopping import AsyncDaemonStopped, StopReason
from trikopf.reactor.objects import ObjectScope


async def test_a_stop_flag_set_before_anyone_waits_ends_the_first_wait_at_once() -> None:
    stopped = AsyncDaemonStopped()
    stopped.set_(StopReason.DELETED)
    with anyio.fail_after(5):
        assert await stopped.wait(3600) is True
    assert stopped.reason is StopReason.DELETED


async def test_a_stop_flag_wakes_a_daemon_that_waits_on_it() -> None:
    stopped = AsyncDaemonStopped()
    results: list[bool] = []

    async def daemon() -> None:
        results.append(await stopped.wait(3600))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(daemon)
            await anyio.wait_all_tasks_blocked()
            stopped.set_(StopReason.OPERATOR_EXITING)
    assert results == [True]


async def test_a_task_with_its_own_cancel_scope_is_cancelled_with_its_object() -> None:
    ended: list[str] = []
    own = anyio.CancelScope()

    done: list[object] = []

    async def task() -> None:
        with own:
            await anyio.sleep_forever()
        ended.append("cancelled" if own.cancelled_caught else "returned")
        assert scope.task_ended(own, None) is False  # its end, reported by itself

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            scope = ObjectScope("uid-1", tg, done.append, lambda key, s, e: None, key="slot")
            scope.start_soon(task, cancel_scope=own)
            await anyio.wait_all_tasks_blocked()
            assert scope.active == 1
            scope.cancel()
    assert ended == ["cancelled"]
    assert scope.active == 0
    assert done == ["slot"]


async def test_a_task_with_its_own_cancel_scope_hands_its_bug_to_the_owner() -> None:
    own = anyio.CancelScope()
    bugs: list[tuple[object, str]] = []

    async def task() -> None:
        try:
            with own:
                raise ValueError("a bug")
        except BaseException as exc:
            if not scope.task_ended(own, exc):
                raise

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:  # not failed: the owner has the bug
            scope = ObjectScope(
                "uid-1", tg, lambda key: None, lambda key, s, e: bugs.append((key, str(e))), "k"
            )
            scope.start_soon(task, cancel_scope=own)
    assert bugs == [("k", "a bug")]
    assert scope.active == 0


async def test_a_lean_task_is_cancelled_with_its_task_group() -> None:
    ended: list[str] = []

    async def task() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.append("ended")

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            start_soon_lean(tg, task, name="lean")
            await anyio.wait_all_tasks_blocked()
            assert ended == []
            tg.cancel_scope.cancel()
    assert ended == ["ended"]


async def test_a_lean_task_that_fails_fails_its_task_group() -> None:
    async def task(message: str) -> None:
        raise ValueError(message)

    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="^lean failure$")):
        async with anyio.create_task_group() as tg:
            start_soon_lean(tg, task, "lean failure")
            await anyio.sleep_forever()


async def test_an_object_scope_cancels_every_task_it_runs_and_counts_their_ends() -> None:
    ended: list[str] = []
    release = anyio.Event()

    async def short() -> None:
        await release.wait()
        ended.append("short")

    async def long(label: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            ended.append(label)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            scope = ObjectScope("uid-1", tg, lambda key: None, lambda key, s, e: None)
            scope.start_soon(short)  # the first task, which ends before the others
            scope.start_soon(long, "second")
            scope.start_soon(long, "third")
            await anyio.wait_all_tasks_blocked()
            assert scope.active == 3
            release.set()
            await anyio.wait_all_tasks_blocked()
            assert scope.active == 2
            scope.start_soon(long, "fourth")  # started after the first one has ended
            await anyio.wait_all_tasks_blocked()
            assert scope.active == 3
            scope.cancel_tasks()
            await anyio.wait_all_tasks_blocked()
            assert scope.active == 0
            scope.start_soon(long, "fifth")  # a restart of the tree: new tasks may start
            await anyio.wait_all_tasks_blocked()
            assert scope.active == 1
            scope.cancel()
    assert ended[0] == "short"
    assert sorted(ended[1:4]) == ["fourth", "second", "third"]
    assert ended[4:] == ["fifth"]
    assert scope.active == 0
