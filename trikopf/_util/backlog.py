"""The gate a watcher waits at while its dispatcher holds too many events (backpressure)."""

from __future__ import annotations

from collections.abc import Callable

import anyio

__all__ = ["BacklogGate"]


class BacklogGate:
    """Where a watcher waits until its dispatcher's backlog has drained enough.

    The dispatcher decides when it is congested and when it has drained (its own counters);
    this holds the one :class:`anyio.Event` that a waiting watcher needs, made only while
    somebody waits, so an uncongested dispatcher pays one attribute test per release.
    """

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: anyio.Event | None = None

    @property
    def waited_on(self) -> bool:
        """Whether a watcher waits at the gate now (only then is a release worth computing)."""
        return self._waiter is not None

    async def wait_while(self, congested: Callable[[], bool]) -> None:
        """Return once ``congested()`` is false, checked again after every release.

        Returns at once if it is false already; it is cancelled with its caller.
        """
        while congested():
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def release(self) -> None:
        """Let the waiting watcher look again (it waits on if still congested)."""
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.set()
