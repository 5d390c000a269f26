"""``run_in_context``: a coroutine awaited in a context of its own, on both backends."""

from __future__ import annotations

import contextvars

import anyio
import anyio.lowlevel
import pytest

from trikopf._util.contexts import WorkerContext, run_in_context

VALUE: contextvars.ContextVar[str] = contextvars.ContextVar("value", default="outer")


async def sets_and_returns(new: str, steps: int) -> str:
    before = VALUE.get()
    VALUE.set(new)
    for _ in range(steps):
        await anyio.lowlevel.checkpoint()
        assert VALUE.get() == new  # every step runs in the same (inner) context
    return before


async def test_the_result_comes_back_and_the_callers_context_is_untouched() -> None:
    inner = contextvars.copy_context()
    assert await run_in_context(inner, sets_and_returns("inner", 5)) == "outer"
    assert VALUE.get() == "outer"
    assert inner[VALUE] == "inner"  # what the coroutine set stays in its context


async def test_exceptions_and_cancellation_pass_through() -> None:
    async def fails() -> None:
        await anyio.lowlevel.checkpoint()
        raise LookupError("inner")

    with pytest.raises(LookupError, match="inner"):
        await run_in_context(contextvars.copy_context(), fails())

    finished = False

    async def waits_forever() -> None:
        nonlocal finished
        try:
            await anyio.sleep_forever()
        finally:
            finished = True

    with anyio.move_on_after(0.01) as scope:
        await run_in_context(contextvars.copy_context(), waits_forever())
    assert scope.cancelled_caught
    assert finished


async def test_an_exception_thrown_in_can_be_handled_by_the_coroutine() -> None:
    async def survives_one_cancellation() -> str:
        with anyio.move_on_after(0.01):
            await anyio.sleep_forever()
        await anyio.lowlevel.checkpoint()
        return "went on"

    assert await run_in_context(contextvars.copy_context(), survives_one_cancellation()) == (
        "went on"
    )


async def test_a_worker_context_isolates_turns_once_a_handler_has_set_something() -> None:
    async def task() -> tuple[str, ...]:
        context = WorkerContext()
        seen = []
        for name in ("a", "b", "c"):
            try:
                seen.append(await context.wrap(sets_and_returns(name, 1)))
            finally:
                context.check()
        plain = sets_and_returns("x", 0)
        assert context.wrap(plain) is not plain  # dirty: wrapped from now on
        plain.close()
        return tuple(seen)

    async def untouched() -> bool:
        context = WorkerContext()
        coro = anyio.lowlevel.checkpoint()
        same = context.wrap(coro) is coro
        await coro
        context.check()
        return same and not context.dirty

    # The first turn ran in the worker's own context (and changed it); the later ones saw the
    # context the worker started with, not what the earlier turns set.
    worker_own = contextvars.copy_context()  # as a worker task's own context
    assert await run_in_context(worker_own, task()) == ("outer", "outer", "outer")
    assert worker_own[VALUE] == "a"  # only the first turn changed it
    assert VALUE.get() == "outer"
    assert await untouched()
