"""A run-local value (one per event loop run) read without AnyIO's per-call lookups.

``anyio.lowlevel.RunVar.get`` finds the backend and its run token on every call (~2 µs); the
round path reads two such values per object. :class:`RunLocal` keeps the last run's value beside
the run's identity (Trio's root task, or the asyncio loop) and goes to the RunVar only when the
run differs. Synchronous, no checkpoints; call from inside an event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio.lowlevel
import trio.lowlevel
from sniffio import current_async_library

__all__ = ["RunLocal", "current_run"]

T = TypeVar("T")


def current_run() -> object:
    """An object that identifies the current event loop run (Trio's root task, the asyncio loop)."""
    if current_async_library() == "trio":
        return trio.lowlevel.current_root_task()
    return asyncio.get_running_loop()


class RunLocal(Generic[T]):
    """One value per event loop run, made by ``factory`` on first use in that run."""

    __slots__ = ("_cached", "_factory", "_var")

    def __init__(self, name: str, factory: Callable[[], T]) -> None:
        self._var: anyio.lowlevel.RunVar[T] = anyio.lowlevel.RunVar(name)
        self._factory = factory
        self._cached: tuple[object, T] | None = None

    def get(self) -> T:
        """This run's value (made now if it has none yet)."""
        run = current_run()
        cached = self._cached
        if cached is not None and cached[0] is run:
            return cached[1]
        try:
            value = self._var.get()
        except LookupError:
            value = self._factory()
            self._var.set(value)
        self._cached = (run, value)
        return value
