"""Raw watch events into ``on.event`` handlers, for resources that have nothing else.

A resource whose only handlers are ``on.event`` handlers needs no per-object supervisor: no
rounds, no coalescing, no batch window, no per-object state. :class:`RawDispatcher` keeps the
two promises that matter for such handlers (every event of one object is handled in order, one
at a time; a slow handler of one object does not hold up the others) with a small pool of
worker tasks instead of a task per object:

- :meth:`~RawDispatcher.dispatch` (synchronous, never blocks the watcher) appends the event to
  its object's queue; an object with a queue is either waiting in the ready line or being
  served by exactly one worker, which drains the queue before it takes the next object, or
  after ``STEP_EVENTS`` of its events, if others are ready, puts it back at the end of the line;
- a new worker is started only when an object is ready and every worker is busy with an
  object (up to ``max_workers``); a worker that takes an object while others are still ready
  starts one helper, which serves them if the handler waits for something. Fast handlers are
  therefore all called by one worker, one event after another (with at most one idle helper
  beside it), without any task being started per event;
- workers exit after ``idle_timeout`` with nothing to do;
- with ``backlog_limit``, :meth:`~RawDispatcher.congested` tells the watcher to stop reading
  once that many events are queued, and :meth:`~RawDispatcher.wait_uncongested` lets it go on
  when the backlog is down to half of it (the watcher's backpressure protocol).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from trikopf._util.backlog import BacklogGate
from trikopf._util.contexts import WorkerContext
from trikopf.reactor.objects import RawFn, SupervisorStatistics
from trikopf.structs import WatchEvent

__all__ = ["RawDispatcher"]

logger = logging.getLogger("trikopf.reactor")

# Events a worker handles in one run step at most (handlers that never wait included): then it
# lets the event loop run the watchers and other tasks. About a millisecond of fast handlers.
STEP_EVENTS = 32


@attrs.define(eq=False)
class RawDispatcher:
    """Dispatches the raw events of one watch to ``handle`` in a pool of workers.

    Starts its workers in ``task_group`` (at most ``max_workers``, ``None``: as many as objects
    whose handlers wait at the same time) and nothing else. :meth:`stop` makes it refuse new
    events and drop the queued ones; handler calls in progress finish, then the workers exit.
    Cancelling ``task_group`` cancels everything at once. An exception escaping ``handle`` is a
    bug: it is logged, and the worker goes on with the next event. ``backlog_limit`` (``None``:
    no limit) is how many queued events make it :meth:`congested`.
    """

    task_group: anyio.abc.TaskGroup
    handle: RawFn
    max_workers: int | None = None
    idle_timeout: float = 5.0
    name: str = "objects"
    backlog_limit: int | None = None
    _pending: int = attrs.field(default=0, init=False)  # queued events, the handled ones too
    _gate: BacklogGate = attrs.field(factory=BacklogGate, init=False)
    # Per object with an event queued or being handled: its newest event when nothing waits
    # behind the one in the ready line or in a handler, else the events waiting behind it.
    _held: dict[str, WatchEvent | deque[WatchEvent]] = attrs.field(factory=dict, init=False)
    _ready: deque[WatchEvent] = attrs.field(factory=deque, init=False)  # objects' next events
    _workers: int = attrs.field(default=0, init=False)
    _free: int = attrs.field(default=0, init=False)  # workers not inside a handler call
    _wakeup: anyio.Event | None = attrs.field(default=None, init=False)
    _stopping: bool = attrs.field(default=False, init=False)
    _handled: int = attrs.field(default=0, init=False)
    _bugs: int = attrs.field(default=0, init=False)

    def dispatch(self, event: WatchEvent) -> None:
        """Queue one event for its object, waking or starting a worker if needed."""
        if self._stopping:
            return
        meta = event.object.get("metadata")
        uid = meta.get("uid") if meta else None
        if uid is None:
            return
        self._pending += 1
        held = self._held
        prior = held.get(uid)
        if prior is not None:
            # The object is in the ready line or in a handler: the event waits behind it.
            if type(prior) is deque:
                prior.append(event)
            else:
                held[uid] = deque((event,))
            return
        held[uid] = event
        self._ready.append(event)
        if self._free == 0:
            self._start_worker()
        elif self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def _start_worker(self) -> None:
        if self.max_workers is None or self._workers < self.max_workers:
            self._workers += 1
            self._free += 1
            self.task_group.start_soon(self._work, name=f"{self.name}:events")

    def forget_missing(self, present: Iterable[str]) -> None:
        """After a relist: queued objects that were not listed get a synthetic ``DELETED``."""
        present = set(present)
        for uid, prior in list(self._held.items()):
            if uid in present:
                continue
            if type(prior) is deque:
                prior.append(WatchEvent(type="DELETED", object=prior[-1].object))
            else:
                assert isinstance(prior, WatchEvent)
                self._held[uid] = deque((WatchEvent(type="DELETED", object=prior.object),))
            self._pending += 1

    def congested(self) -> bool:
        """Whether ``backlog_limit`` events or more are queued (the watcher should wait)."""
        limit = self.backlog_limit
        return limit is not None and self._pending >= limit and not self._stopping

    async def wait_uncongested(self) -> None:
        """Wait until the backlog is down to half of ``backlog_limit`` (or the dispatcher stops).

        Returns at once if it is not :meth:`congested`; it is cancelled with its caller.
        """
        await self._gate.wait_while(self.congested)

    def stop(self) -> None:
        """Refuse new events, drop the queued ones; workers exit after their current call."""
        self._stopping = True
        self._ready.clear()
        self._gate.release()
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: no new events are accepted."""
        return self._stopping

    def _is_stopping(self) -> bool:
        # A call, not an attribute: the flag changes across awaits (and mypy must not narrow it).
        return self._stopping

    def statistics(self) -> SupervisorStatistics:
        """Objects with queued events, live workers, events handled, bugs caught."""
        return SupervisorStatistics(
            objects=len(self._held),
            workers=self._workers,
            rounds=self._handled,
            restarts=self._bugs,
        )

    async def _work(self) -> None:
        held = self._held
        streak = 0  # events handled since this worker last let others run
        # What one object's handlers set in context variables is not seen by the next
        # object's handlers: as with a task per object.
        context = WorkerContext()
        try:
            while True:
                if not self._ready:
                    streak = 0
                    if self._is_stopping():
                        return
                    waiter = self._wakeup
                    if waiter is None:
                        waiter = self._wakeup = anyio.Event()
                    with anyio.move_on_after(self.idle_timeout) as idle:
                        await waiter.wait()
                    if idle.cancelled_caught and not self._ready:
                        return  # no await since the check: no event can slip in between
                    continue
                event = self._ready.popleft()
                uid: str = event.object["metadata"]["uid"]
                self._free -= 1
                if self._ready and not self._free:
                    # Others are ready and nobody else is free: a helper takes them if this
                    # object's handler turns out to wait (else it finds nothing and idles).
                    self._start_worker()
                requeued = False
                try:
                    # This object's events, one after another, until none waits behind.
                    while True:
                        try:
                            await context.wrap(self.handle(event))
                        except Exception:
                            self._bugs += 1
                            logger.exception(
                                "A bug while handling an event of object %s (%s); going on.",
                                uid,
                                self.name,
                            )
                        context.check()
                        self._handled += 1
                        self._pending -= 1
                        if self._pending * 2 <= (self.backlog_limit or 0) and self._gate.waited_on:
                            self._gate.release()
                        streak += 1
                        if streak >= STEP_EVENTS:
                            # A long line of fast handlers: no step of the loop is longer.
                            # Counted as free meanwhile: a pause is no reason for a helper.
                            streak = 0
                            self._free += 1
                            try:
                                await anyio.lowlevel.checkpoint()
                            finally:
                                self._free -= 1
                        behind = held[uid]
                        if type(behind) is not deque or self._is_stopping():
                            break
                        event = behind.popleft()
                        if not behind:
                            held[uid] = event  # the newest one again: nothing waits behind
                        if streak == 0 and self._ready:
                            # Just paused, and others came in meanwhile (nobody was started for
                            # them): this object goes to the end of the line, not before them.
                            self._ready.append(event)
                            requeued = True
                            break
                finally:
                    if not requeued:
                        # Dropped when stopping (or cancelled): what still waits behind.
                        behind = held.pop(uid)
                        if type(behind) is deque:
                            self._pending -= len(behind)
                    self._free += 1
        finally:
            self._workers -= 1
            self._free -= 1
