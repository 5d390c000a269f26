"""The ``stopped`` flag that daemons receive, in an async and a sync (thread-side) flavour."""

from __future__ import annotations

import enum
import threading

import anyio

__all__ = ["AsyncDaemonStopped", "DaemonStopped", "StopReason", "SyncDaemonStopped"]


class StopReason(str, enum.Enum):
    """Why a daemon or timer is asked to stop."""

    DELETED = "the object is being deleted"
    FILTERED_OUT = "the object no longer matches the filters"
    OPERATOR_EXITING = "the operator is exiting"
    # Kopf's names for the same reasons (kopf.DaemonStoppingReason): aliases, equal to the above.
    RESOURCE_DELETED = "the object is being deleted"
    FILTERS_MISMATCH = "the object no longer matches the filters"


class DaemonStopped:
    """Set when the daemon should return; false until then (``while not stopped: ...``).

    The engine sets it from the event loop; reading it is safe from any thread. ``reason`` says
    why it was set (a :class:`StopReason`), ``None`` while it is not set.
    """

    __slots__ = ("_event", "_flag", "reason")

    def __init__(self) -> None:
        self._flag = False
        # Made only when a daemon first waits: a daemon that never waits costs no event.
        self._event: anyio.Event | None = None
        self.reason: StopReason | None = None

    def __bool__(self) -> bool:
        return self._flag

    def is_set(self) -> bool:
        """Whether the daemon has been asked to stop."""
        return self._flag

    def __repr__(self) -> str:
        state = f"set: {self.reason.value}" if self.reason is not None else "not set"
        return f"<{type(self).__name__} {state}>"

    def set_(self, reason: StopReason) -> None:
        """Raise the flag (from the event loop only); the first reason is kept."""
        if self.reason is None:
            self.reason = reason
        self._flag = True
        if self._event is not None:
            self._event.set()

    async def wait_async(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """In the event loop: wait until set or ``timeout`` seconds pass; return whether set."""
        event = self._event
        if event is None:
            # Created set if the flag already is (both only in the event loop: no race).
            event = self._event = anyio.Event()
            if self._flag:
                event.set()
        if timeout is None:
            await event.wait()
            return True
        with anyio.move_on_after(timeout):
            await event.wait()
        return event.is_set()


class AsyncDaemonStopped(DaemonStopped):
    """What async daemons get: ``await stopped.wait(10)`` is a sleep that ends early on stop."""

    __slots__ = ()

    # The timeout argument is the daemon API users know (stopped.wait(10) as a sleep).
    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until the flag is set or ``timeout`` seconds pass; return whether it is set."""
        return await self.wait_async(timeout)


class SyncDaemonStopped(DaemonStopped):
    """What sync daemons (run in a thread) get: ``stopped.wait(10)`` blocks the thread only."""

    # Only sync daemons pay for a threading.Event (a lock and a condition each).
    __slots__ = ("_thread_event",)

    def __init__(self) -> None:
        super().__init__()
        self._thread_event = threading.Event()

    def set_(self, reason: StopReason) -> None:
        super().set_(reason)
        self._thread_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling thread until set or ``timeout`` seconds pass; return whether set."""
        return self._thread_event.wait(timeout)
