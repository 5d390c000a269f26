"""Run an operator inside a test's own event loop, next to the test's code."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any

import anyio
import anyio.abc
import attrs

from trikopf.client import ConnectionInfo
from trikopf.reactor.running import ObjectHook, operate
from trikopf.registry import OperatorRegistry
from trikopf.settings import OperatorSettings

__all__ = ["RunningOperator", "open_operator"]


@attrs.define(eq=False)
class RunningOperator:
    """The handle of an operator started by :func:`open_operator`.

    ``stop()`` asks for a graceful stop and returns at once; leaving the ``async with`` block
    waits for the operator to be gone. ``stopped`` is set when :func:`operate` has returned.
    """

    _stop_flag: anyio.Event
    stopped: anyio.Event = attrs.field(factory=anyio.Event)
    settings: OperatorSettings = attrs.field(factory=OperatorSettings)

    def stop(self) -> None:
        """Begin the graceful stop (as SIGINT would); returns at once."""
        self._stop_flag.set()


@contextlib.asynccontextmanager
async def open_operator(
    registry: OperatorRegistry | None = None,
    *,
    connection: ConnectionInfo | None = None,
    settings: OperatorSettings | None = None,
    namespaces: Iterable[str] = (),
    clusterwide: bool = False,
    memo: Any = None,
    hooks: Iterable[ObjectHook] = (),
    stop_within: float = math.inf,
) -> AsyncIterator[RunningOperator]:
    """Start an operator in a task group of the caller; enter once it is ready.

    Starts :func:`trikopf.operate` (without signal handling) as one task; returns from
    ``__aenter__`` when every watcher has listed. Leaving the block stops the operator
    gracefully and waits until it is gone; ``stop_within`` (seconds) bounds that wait, after
    which it is cancelled. An exception in the operator propagates out of the block.
    """
    settings = settings if settings is not None else OperatorSettings()
    stop_flag = anyio.Event()
    handle = RunningOperator(stop_flag, settings=settings)

    async def run_operator(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        try:
            await operate(
                registry,
                settings=settings,
                namespaces=namespaces,
                clusterwide=clusterwide,
                memo=memo,
                connection=connection,
                stop_flag=stop_flag,
                handle_signals=False,
                hooks=hooks,
                task_status=task_status,
            )
        finally:
            handle.stopped.set()

    try:
        async with anyio.create_task_group() as tg:
            await tg.start(run_operator)
            try:
                yield handle
            finally:
                stop_flag.set()
                with anyio.move_on_after(stop_within, shield=True) as waited:
                    await handle.stopped.wait()
                if waited.cancelled_caught:
                    tg.cancel_scope.cancel()
    except Exception as exc:
        # A task group wraps even a single failure in a group: hand tests the failure itself.
        leaf = _single_leaf(exc)
        if leaf is exc:
            raise
        raise leaf from None


def _single_leaf(exc: BaseException) -> BaseException:
    while (inner := getattr(exc, "exceptions", None)) and len(inner) == 1:
        exc = inner[0]
    return exc
