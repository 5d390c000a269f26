"""Running a coroutine in a context of its own, inside the awaiting task.

A pool worker runs the handlers of many objects one after another in one task. Whatever a
handler sets in a :class:`contextvars.ContextVar` (a logging library's bound fields, a
request id) would then stay in the worker's context and be seen by the next object's
handlers, and by the daemons and timers that a later round starts from it. A task per object
isolates this by itself; a pool keeps it so with :class:`WorkerContext`: handlers run in the
worker's own context as long as none of them changes it (the usual case, at no cost but a
comparison), and, once one has, every later turn runs in a copy of the context the worker
started with (:func:`run_in_context`).
"""

from __future__ import annotations

import contextvars
import types
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["WorkerContext", "run_in_context"]

T = TypeVar("T")


class WorkerContext:
    """The context a pool worker started with, and whether its handlers have changed its own.

    Make one at the start of the worker's task. Per turn (one object's round or event):
    ``await context.wrap(coro)``, then, also when it raised, ``context.check()``. Not shared
    between tasks; no checkpoints of its own.
    """

    __slots__ = ("_clean", "dirty")

    def __init__(self) -> None:
        self._clean = contextvars.copy_context()
        self.dirty = False  # a handler has set something in the worker's own context

    def wrap(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """``coro`` itself while the worker's context is clean, else ``coro`` in a fresh copy
        of the context the worker started with."""
        if self.dirty:
            return run_in_context(self._clean.copy(), coro)
        return coro

    def check(self) -> None:
        """After a turn: has it changed the worker's own context? (Equal at once if not.)"""
        if not self.dirty and contextvars.copy_context() != self._clean:
            self.dirty = True


@types.coroutine
def run_in_context(
    context: contextvars.Context, coro: Coroutine[Any, Any, T]
) -> Generator[Any, Any, T]:
    """Await ``coro`` with every step of it run in ``context`` (``await run_in_context(…)``).

    Each step of ``coro`` (up to the event loop's next wake-up of the task) runs through
    ``context.run``; what the loop sends or throws in (results, cancellation) is passed on
    unchanged, so cancellation, timeouts and exceptions behave as if ``coro`` were awaited
    directly. ``context`` must not be in use elsewhere at the same time (pass a fresh copy).
    """
    run = context.run
    send, throw = coro.send, coro.throw
    value: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                if error is None:
                    step = run(send, value)
                else:
                    thrown, error = error, None
                    step = run(throw, thrown)
            except StopIteration as stop:
                result: T = stop.value
                return result
            try:
                value = yield step
            except BaseException as exc:  # cancellation, GeneratorExit: to the coroutine
                error = exc
    finally:
        coro.close()  # a no-op once it has finished; frees it if we were abandoned early
