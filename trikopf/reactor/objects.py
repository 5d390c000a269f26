"""One supervisor per object: rounds one at a time, bursts coalesced, idle objects hold no task.

A :class:`ResourceSupervisor` receives the events of one (resource, namespace) watch through
:meth:`~ResourceSupervisor.dispatch` (synchronous, never blocks the watcher) and keeps, per
object uid, at most one worker task in the task group it is given. The worker:

- runs one processing round at a time; events arriving during a round are coalesced, and the
  next round sees only the newest body;
- waits ``batch_window`` after the first event of a burst, so that a burst costs one round;
- honours the round's requested delay (a retry): it sleeps until then, or until a new event
  wakes it early;
- exits after ``idle_timeout`` with nothing to do and nothing running in its object scope; its
  small per-object state stays in a dict until the object is deleted;
- owns an :class:`ObjectScope`, the object's share of the tasks where daemons and timers run
  (started by ``trikopf/engines/`` through the ``process`` callable); deleting the object
  cancels that scope.

A bug (an exception escaping a round or the object scope) is logged, and the object's tree is
restarted after a short backoff; other objects are not affected.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

import anyio
import anyio.abc
import attrs

from trikopf._util.instruments import Instruments, current_instruments
from trikopf._util.tasks import start_soon_lean
from trikopf.structs import WatchEvent

__all__ = ["ObjectScope", "ProcessFn", "RawFn", "ResourceSupervisor", "SupervisorStatistics"]

logger = logging.getLogger("trikopf.reactor")

S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)

# How long a broken object tree waits before it is restarted (doubling, capped).
_BUG_BACKOFF_FIRST = 1.0
_BUG_BACKOFF_MAX = 60.0


@attrs.define(eq=False)
class ObjectScope:
    """The task tree of one live object: where daemons and timers of that object run.

    The seam for ``trikopf/engines/``: the ``process`` callable of the supervisor receives the
    scope with every round and may start long-running tasks in it with :meth:`start_soon`.

    Contract:

    - Tasks started here belong to the object. While any is running the object's worker does
      not go idle.
    - When the object is deleted (a ``DELETED`` event was processed) the scope is cancelled:
      every task in it stops, nothing outlives the object, and nothing new starts in it.
    - When the operator stops, :attr:`stopping` is set first; tasks should finish on their own
      (daemons: within their own stop timeout). The operator's grace period bounds the wait,
      after which everything is cancelled.
    - An exception escaping a task here is a bug: it is logged and the object's tree is
      restarted (its tasks cancelled, its last event processed again). Engines catch handler
      errors themselves.

    The tasks run in the task group of the (resource, namespace), each in its own cancel scope
    that this object holds: an object without tasks costs no task group at all.
    """

    uid: str
    _task_group: anyio.abc.TaskGroup
    _on_task_done: Callable[[], None]
    _on_bug: Callable[[ObjectScope, BaseException], None]
    active: int = 0
    _cancel_scopes: set[anyio.CancelScope] = attrs.field(factory=set)
    _cancelled: bool = False
    _stopping: anyio.Event | None = None

    @property
    def stopping(self) -> anyio.Event:
        """Set when the operator begins to stop (created on first use)."""
        if self._stopping is None:
            self._stopping = anyio.Event()
        return self._stopping

    def request_stop(self) -> None:
        """Tell the object's tasks that the operator stops (sets :attr:`stopping`)."""
        if self._stopping is not None or self.active:
            self.stopping.set()

    def start_soon(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        cancel_scope: anyio.CancelScope | None = None,
    ) -> None:
        """Start ``fn(*args)`` as a task of this object and return at once.

        Does nothing once the object is gone (the scope was cancelled). A task that runs inside
        a cancel scope of its own passes it as ``cancel_scope`` (``fn`` enters it): the object
        then cancels that one, and the task costs one cancel scope instead of two.
        """
        if self._cancelled:
            return
        entered = cancel_scope is None
        if cancel_scope is None:
            cancel_scope = anyio.CancelScope()
        self._cancel_scopes.add(cancel_scope)
        self.active += 1  # counted now, so that the worker cannot go idle before it starts
        start_soon_lean(  # on Trio without AnyIO's per-task handle: a daemon lives long
            self._task_group,
            self._run_task,
            cancel_scope,
            entered,
            fn,
            args,
            name=name or getattr(fn, "__name__", None),
        )

    async def _run_task(
        self,
        cancel_scope: anyio.CancelScope,
        enter: bool,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        # A method, not a closure per task: a daemon holds no function object and cells of its own.
        try:
            if enter:
                with cancel_scope:
                    await fn(*args)
            else:
                await fn(*args)
        except Exception as exc:
            self._on_bug(self, exc)
        finally:
            self._cancel_scopes.discard(cancel_scope)
            self.active -= 1
            if not self.active:
                self._on_task_done()  # the worker may go idle now

    def cancel_tasks(self) -> None:
        """Cancel the tasks running now; new ones may still start (a restart of the tree)."""
        for cancel_scope in self._cancel_scopes:
            cancel_scope.cancel()

    def cancel(self) -> None:
        """Cancel every task of this object for good (the object is gone)."""
        self._cancelled = True
        self.cancel_tasks()


class ProcessFn(Protocol[S_contra]):
    """One processing round of one object: return the delay until the next round, or ``None``.

    Called with the newest event, the object's state kept between rounds, and its scope.
    """

    def __call__(
        self, event: WatchEvent, state: S_contra, scope: ObjectScope
    ) -> Awaitable[float | None]: ...


RawFn = Callable[[WatchEvent], Awaitable[None]]


@attrs.frozen(kw_only=True)
class SupervisorStatistics:
    """A snapshot of one supervisor: known objects, live workers, rounds run so far."""

    objects: int
    workers: int
    rounds: int
    restarts: int


@attrs.define(eq=False, slots=True)
class _Slot:
    """The mailbox of one live worker."""

    uid: str
    pending: WatchEvent | None = None
    last: WatchEvent | None = None
    raw: list[WatchEvent] | None = None
    # Exists only while the worker waits: a busy or fresh object allocates no event.
    waiter: anyio.Event | None = None
    arrived: float | None = None  # the first event since the last round (metrics only)

    def has_pending(self) -> bool:
        # A method, not an attribute test: the value changes across awaits.
        return self.pending is not None

    def wakeup_soon(self) -> None:
        """Wake the worker if it waits; a busy worker looks at its slot before waiting."""
        if self.waiter is not None:
            self.waiter.set()

    async def wait_up_to(self, seconds: float) -> None:
        """Wait until woken or until ``seconds`` pass (no checkpoint before the waiter exists)."""
        waiter = self.waiter = anyio.Event()
        try:
            with anyio.move_on_after(seconds):
                await waiter.wait()
        finally:
            self.waiter = None


@attrs.define(eq=False)
class ResourceSupervisor(Generic[S]):
    """Dispatches events by uid to per-object workers in ``task_group``.

    Starts one worker task per busy object in ``task_group`` and nothing else. :meth:`stop`
    makes it refuse new events and lets workers finish their current round and exit; cancelling
    ``task_group`` cancels everything at once.
    """

    task_group: anyio.abc.TaskGroup
    process: ProcessFn[S]
    new_state: Callable[[], S]
    raw: RawFn | None = None
    limiter: anyio.CapacityLimiter | None = None
    idle_timeout: float = 5.0
    batch_window: float = 0.0
    name: str = "objects"
    _states: dict[str, S] = attrs.field(factory=dict, init=False)
    _slots: dict[str, _Slot] = attrs.field(factory=dict, init=False)
    _stopping: bool = attrs.field(default=False, init=False)
    _rounds: int = attrs.field(default=0, init=False)
    _restarts: int = attrs.field(default=0, init=False)
    _instruments: Instruments | None = attrs.field(factory=current_instruments, init=False)

    def dispatch(self, event: WatchEvent) -> None:
        """Hand one event to its object's worker, starting the worker if needed; never blocks."""
        if self._stopping:
            return
        uid = event.uid
        if uid is None:
            return
        slot = self._slots.get(uid)
        if slot is None:
            slot = _Slot(uid=uid, raw=[] if self.raw is not None else None)
            self._slots[uid] = slot
            self.task_group.start_soon(self._serve_object, slot, name=f"{self.name}:{uid}")
        if self._instruments is not None and slot.arrived is None:
            slot.arrived = anyio.current_time()
        slot.pending = event
        if slot.raw is not None:
            slot.raw.append(event)
        slot.wakeup_soon()

    def forget_missing(self, present: Iterable[str]) -> None:
        """After a relist: objects known here but not listed were deleted while we were blind.

        Live workers get a synthetic ``DELETED`` event with the last body they saw; idle
        objects just lose their state.
        """
        present = set(present)
        for uid in [uid for uid in self._states if uid not in present]:
            slot = self._slots.get(uid)
            body = None if slot is None else (slot.pending or slot.last)
            if body is not None:
                self.dispatch(WatchEvent(type="DELETED", object=body.object))
            elif slot is None:
                del self._states[uid]

    def stop(self) -> None:
        """Refuse new events; wake every worker so that it exits after its current round."""
        self._stopping = True
        for slot in self._slots.values():
            slot.wakeup_soon()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: no new events are accepted."""
        return self._stopping

    def _is_stopping(self) -> bool:
        # A call, not an attribute: the flag changes across awaits (and mypy must not narrow it).
        return self._stopping

    def statistics(self) -> SupervisorStatistics:
        """How many objects are known, how many hold a task, and how many rounds ran."""
        return SupervisorStatistics(
            objects=len(self._states.keys() | self._slots.keys()),
            workers=len(self._slots),
            rounds=self._rounds,
            restarts=self._restarts,
        )

    def _report_start(self, slot: _Slot) -> None:
        """Metrics: how long the round's first event waited (retry rounds are not counted)."""
        if self._instruments is not None and slot.arrived is not None:
            self._instruments.round_started(anyio.current_time() - slot.arrived)
            slot.arrived = None

    def _task_failed(self, slot: _Slot, scope: ObjectScope, exc: BaseException) -> None:
        """A task of the object's scope raised: a bug; restart the object's tree."""
        self._restarts += 1
        logger.error(
            "A bug in the task tree of object %s (%s); restarting that tree.",
            slot.uid,
            self.name,
            exc_info=exc,
        )
        scope.cancel_tasks()
        if self._stopping or self._slots.get(slot.uid) is not slot:
            return
        # The next round sees the object again and starts what it needs anew.
        if slot.pending is None:
            slot.pending = slot.last
        slot.wakeup_soon()

    async def _serve_object(self, slot: _Slot) -> None:
        failures = 0
        while True:
            scope = ObjectScope(
                slot.uid,
                self.task_group,
                slot.wakeup_soon,
                functools.partial(self._task_failed, slot),
            )
            try:
                await self._serve_rounds(slot, scope)
                return
            except Exception:
                failures += 1
                self._restarts += 1
                scope.cancel()
                logger.exception(
                    "A bug in the task tree of object %s (%s); restarting that tree.",
                    slot.uid,
                    self.name,
                )
            delay = min(_BUG_BACKOFF_FIRST * 2 ** (failures - 1), _BUG_BACKOFF_MAX)
            with anyio.move_on_after(delay):
                while not self._stopping:
                    await slot.wait_up_to(math.inf)
            if self._stopping:
                self._slots.pop(slot.uid, None)
                return
            if slot.pending is None:
                slot.pending = slot.last

    async def _run_raw(self, slot: _Slot) -> None:
        # Every raw event, in order, one object at a time (on.event handlers; errors are theirs).
        if slot.raw and self.raw is not None:
            backlog, slot.raw = slot.raw, []
            for raw_event in backlog:
                await self.raw(raw_event)

    async def _serve_rounds(self, slot: _Slot, scope: ObjectScope) -> None:
        retry_at: float | None = None
        burst = True  # a new worker starts with the first event of a burst
        while True:
            if self._is_stopping():
                # The object's own tasks finish in the resource's task group, which the
                # operator's grace period bounds.
                scope.request_stop()
                self._slots.pop(slot.uid, None)
                return
            if slot.pending is None:
                if retry_at is not None:
                    timeout = max(retry_at - anyio.current_time(), 0.0)
                elif scope.active:
                    timeout = math.inf
                else:
                    timeout = self.idle_timeout
                await slot.wait_up_to(timeout)
                if self._is_stopping():
                    continue
                if not slot.has_pending():
                    if retry_at is not None:
                        if anyio.current_time() < retry_at:
                            continue  # woken by the scope, not by time: keep waiting
                        # The delay passed with no new event: a retry round on the last body.
                        retry_at = None
                        slot.pending = slot.last
                        if slot.pending is None:
                            continue
                    elif scope.active:
                        continue
                    else:
                        # Idle: no await since the wait above, so no event can slip in between.
                        self._slots.pop(slot.uid, None)
                        return
                else:
                    burst = True
            if burst and self.batch_window > 0:
                # Raw-event handlers see the burst's first event now, not after the window.
                await self._run_raw(slot)
                # A new burst: let it settle, then only its newest body is processed.
                await anyio.sleep(self.batch_window)
                if self._is_stopping():
                    continue
            burst = False

            event = slot.pending
            assert event is not None
            slot.pending = None
            slot.last = event  # also what a restarted tree re-runs if this round crashes

            await self._run_raw(slot)

            state = self._states.get(slot.uid)
            if state is None:
                state = self._states[slot.uid] = self.new_state()
            if self.limiter is not None:
                async with self.limiter:
                    self._report_start(slot)
                    delay = await self.process(event, state, scope)
            else:
                self._report_start(slot)
                delay = await self.process(event, state, scope)
            self._rounds += 1
            retry_at = None if delay is None else anyio.current_time() + max(delay, 0.0)

            if event.type == "DELETED":
                # The object is gone: its tree ends, its memory is dropped.
                scope.cancel()
                self._states.pop(slot.uid, None)
                self._slots.pop(slot.uid, None)
                return
