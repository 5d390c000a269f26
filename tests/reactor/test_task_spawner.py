"""Where a supervisor's tasks run: inside the (resource, namespace) task group, on both loops."""

from __future__ import annotations

import anyio
import pytest

from trikopf.reactor.objects import open_task_spawner

pytestmark = pytest.mark.anyio


async def test_tasks_run_to_their_end_before_the_block_is_left() -> None:
    finished: list[int] = []

    async def task(n: int) -> None:
        await anyio.sleep(0.01 * n)
        finished.append(n)

    async with anyio.create_task_group() as tg, open_task_spawner(tg) as spawner:
        for n in range(3):
            spawner.start_soon(task, n, name=f"task {n}")
    assert sorted(finished) == [0, 1, 2]


async def test_cancelling_the_task_group_cancels_the_tasks() -> None:
    cancelled = anyio.Event()
    started = anyio.Event()

    async def task() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, open_task_spawner(tg) as spawner:
            spawner.start_soon(task)
            await started.wait()
            tg.cancel_scope.cancel()
    assert cancelled.is_set()


async def test_a_failing_task_ends_the_block_with_its_error() -> None:
    async def task() -> None:
        raise RuntimeError("a bug")

    caught: list[BaseException] = []
    try:
        async with anyio.create_task_group() as tg, open_task_spawner(tg) as spawner:
            spawner.start_soon(task)
            await anyio.sleep_forever()
    except BaseException as exc:  # an exception group (its class is built in from 3.11 only)
        caught.append(exc)
    assert len(caught) == 1
    leaves = _leaves(caught[0])
    assert [(type(leaf), str(leaf)) for leaf in leaves] == [(RuntimeError, "a bug")]


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if inner is None:
        return [exc]
    return [leaf for sub in inner for leaf in _leaves(sub)]
