"""One supervisor per (resource, namespace): rounds one at a time per object, in a pool of workers.

A :class:`ResourceSupervisor` receives the events of one (resource, namespace) watch through
:meth:`~ResourceSupervisor.dispatch` (synchronous, never blocks the watcher). An object with a
round ahead of it has a small slot, which is in exactly one place at a time: in its batch
window, in the ready line, in a round, or waiting for a retry. A pool of worker tasks takes
objects from the ready line, first come first served, and runs one round each:

- one round per object at a time; events arriving during a round are coalesced, and the
  next round sees only the newest body (right after the round: those events have waited);
- a new burst waits ``batch_window`` before its round, so that a burst costs one round; raw
  (``on.event``) handlers see the burst's first event at once, before the window;
- a round's requested delay (a retry) runs a round on the last body when it is due, or earlier
  with the newest body if a new event arrives (a new burst);
- batch windows and retries are timed by one clock task per supervisor (only while some are
  timed), not by a task per object: the windows are all the same length, so they form a queue
  in deadline order, the retries a heap;
- the pool grows while rounds wait: a worker that takes an object while others are ready and
  no other worker is free starts one more worker (up to ``max_workers``, the operator's
  ``worker_limit``), so a slow handler holds up only its own worker, never the objects behind
  it; a worker exits after ``idle_timeout`` with nothing to do. A worker that runs rounds which
  never wait lets the event loop run after 32 of them;
- an idle object holds no task and no slot, only its small state (kept until it is deleted),
  and not even that if the state says only that the object was seen: then just a hash of its
  uid is kept (see ``idle_state``);
  an object whose :class:`ObjectScope` (the object's share of the tasks where daemons and
  timers run, started by ``trikopf/engines/`` through the ``process`` callable) still runs
  tasks keeps it, parked by uid, until they end or its next round takes it over; deleting the
  object cancels that scope.

A bug (an exception escaping a round or the object scope) is logged, and the object's tree is
restarted after a short backoff; other objects are not affected.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar, cast

import anyio
import anyio.abc
import anyio.lowlevel
import attrs
import sniffio
import trio

from trikopf._util.backlog import BacklogGate
from trikopf._util.clock import current_time
from trikopf._util.contexts import WorkerContext
from trikopf._util.instruments import Instruments, current_instruments
from trikopf._util.memory import HashedKeys
from trikopf._util.tasks import start_soon_lean
from trikopf.client import jsonlib
from trikopf.structs import WatchEvent

__all__ = [
    "BodySource",
    "ObjectScope",
    "ProcessFn",
    "RawFn",
    "ResourceSupervisor",
    "SupervisorStatistics",
    "TaskSpawner",
    "open_task_spawner",
]

logger = logging.getLogger("trikopf.reactor")

S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)

# How long a broken object tree waits before it is restarted (doubling, capped).
_BUG_BACKOFF_FIRST = 1.0
_BUG_BACKOFF_MAX = 60.0


class TaskSpawner(Protocol):
    """Where the supervisor starts its tasks: an AnyIO task group or a Trio nursery."""

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any, name: Any = None) -> None:
        """Start ``func(*args)`` as a task and return at once."""


@asynccontextmanager
async def open_task_spawner(task_group: anyio.abc.TaskGroup) -> AsyncIterator[TaskSpawner]:
    """Where a supervisor's tasks (round workers, its clock, daemons, timers) run, in ``task_group``.

    Under Trio a nursery of its own (nested in ``task_group``, so that cancelling the group
    cancels it): AnyIO's task groups wrap every task in a handle with a cancel scope, an event
    and one more coroutine frame, which costs a task about twice what Trio's own spawn does. Elsewhere ``task_group`` itself. Leaving the block waits for the tasks, as
    leaving a task group does.
    """
    if sniffio.current_async_library() == "trio":
        async with trio.open_nursery() as nursery:
            yield cast(TaskSpawner, nursery)
    else:
        yield cast(TaskSpawner, task_group)


class BodySource(Protocol):
    """Something that keeps an object's newest body (an engine's live body of the object)."""

    @property
    def raw(self) -> Mapping[str, Any]:
        """The newest body the engine saw (the body of the object's last round)."""


@attrs.define(eq=False)
class ObjectScope:
    """The task tree of one live object: where daemons and timers of that object run.

    The seam for ``trikopf/engines/``: the ``process`` callable of the supervisor receives the
    scope with every round and may start long-running tasks in it with :meth:`start_soon`.

    Contract:

    - Tasks started here belong to the object. They do not keep a round worker busy: the
      supervisor keeps the scope (and the object's last body) while any of them runs, and
      hands it to the object's next round.
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

    An engine that keeps the object's newest body anyway (updated in every round) may say so
    in :attr:`body_source`: between rounds the supervisor then reads the last body from there
    (a restart after a bug, a relist that misses the object) instead of keeping its own copy.
    """

    uid: str
    _task_group: TaskSpawner | anyio.abc.TaskGroup
    # Called as ``on_task_done(key)`` and ``on_bug(key, scope, exc)``: the owner's methods and
    # its handle of the object, not a closure or partial per object (a parked daemon object
    # would hold two, with their argument tuples, for its whole life).
    _on_task_done: Callable[[Any], None]
    _on_bug: Callable[[Any, ObjectScope, BaseException], None]
    key: Any = None
    active: int = 0
    # The cancel scopes of the running tasks: the first in a field, more in a set made only
    # then (most objects run one task: a daemon holds no set of its own).
    _cancel_scope: anyio.CancelScope | None = None
    _more_cancel_scopes: set[anyio.CancelScope] | None = None
    _cancelled: bool = False
    _stopping: anyio.Event | None = None
    # Set by an engine that keeps the object's newest body for its tasks anyway (daemons'
    # live bodies): the supervisor then keeps no copy of its own between rounds.
    body_source: BodySource | None = None

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
        a cancel scope of its own passes it as ``cancel_scope``: ``fn`` enters it and, as its
        last step, calls :meth:`task_ended` with it and the exception escaping it (``None`` if
        none). The object then cancels that scope, and the task runs with no frame of ours
        around it and one cancel scope instead of two.
        """
        if self._cancelled:
            return
        own = cancel_scope is not None
        if cancel_scope is None:
            cancel_scope = anyio.CancelScope()
        if self._cancel_scope is None:
            self._cancel_scope = cancel_scope
        elif self._more_cancel_scopes is None:
            self._more_cancel_scopes = {cancel_scope}
        else:
            self._more_cancel_scopes.add(cancel_scope)
        self.active += 1  # counted now, so that the worker cannot go idle before it starts
        if not own:
            args = (cancel_scope, fn, args)
            fn = self._run_task
        spawner = self._task_group
        name = name or getattr(fn, "__name__", None)
        if isinstance(spawner, anyio.abc.TaskGroup):
            # On Trio without AnyIO's per-task handle: a daemon lives long.
            start_soon_lean(spawner, fn, *args, name=name)  # type: ignore[arg-type]
        else:  # a Trio nursery already (see open_task_spawner)
            spawner.start_soon(fn, *args, name=name)

    def task_ended(self, cancel_scope: anyio.CancelScope, exc: BaseException | None) -> bool:
        """A task of this object has ended (see :meth:`start_soon`); returns at once.

        ``exc`` is what escaped the task. An :class:`Exception` is a bug: it goes to the owner
        (which restarts the object's tree), and ``True`` is returned: the task must not raise
        it. Anything else (a cancellation, ``KeyboardInterrupt``) is the task's to raise.
        """
        bug = isinstance(exc, Exception)
        try:
            if bug:
                self._on_bug(self.key, self, exc)  # type: ignore[arg-type]
        finally:
            if self._cancel_scope is cancel_scope:
                self._cancel_scope = None
            elif self._more_cancel_scopes is not None:
                self._more_cancel_scopes.discard(cancel_scope)
                if not self._more_cancel_scopes:
                    self._more_cancel_scopes = None
            self.active -= 1
            if not self.active:
                self._on_task_done(self.key)  # the worker may go idle now
        return bug

    async def _run_task(
        self,
        cancel_scope: anyio.CancelScope,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
    ) -> None:
        # A method, not a closure per task: a task holds no function object and cells of its own.
        try:
            with cancel_scope:
                await fn(*args)
        except BaseException as exc:
            if not self.task_ended(cancel_scope, exc):
                raise
        else:
            self.task_ended(cancel_scope, None)

    def cancel_tasks(self) -> None:
        """Cancel the tasks running now; new ones may still start (a restart of the tree)."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        if self._more_cancel_scopes is not None:
            for cancel_scope in list(self._more_cancel_scopes):
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


RawFn = Callable[[WatchEvent], Coroutine[Any, Any, None]]


@attrs.frozen(kw_only=True)
class SupervisorStatistics:
    """A snapshot of one supervisor: known objects, live workers, rounds run so far.

    ``workers``: the pool's worker tasks; ``active``: objects with a round ahead of them (in
    the ready line, in their batch window, in a round, or waiting for a retry);
    ``parked``: objects with nothing ahead whose scope still runs tasks (daemons, timers);
    ``waiting``: events waiting for their round to start (what backpressure counts).
    """

    objects: int
    workers: int
    rounds: int
    restarts: int
    parked: int = 0
    waiting: int = 0
    active: int = 0


# Where a slot is (one place at a time: this is what keeps one round per object at a time).
_IDLE = 0  # nothing ahead: not held by the supervisor (or parked, with tasks running)
_WINDOW = 1  # waiting out its batch window (queued in the clock's windows)
_READY = 2  # in the ready line, for the next free worker
_RUNNING = 3  # a worker runs its round (or its raw handlers)
_TIMED = 4  # waiting for a retry, or for the backoff after a bug (queued in the clock's timers)

# Rounds a worker runs in one go without waiting (rounds that never wait included): then it
# lets the event loop run the watcher and the other tasks.
_STEP_ROUNDS = 32
# The timer heap is cleared of voided entries when it grows past twice its live size, or this.
_TIMERS_COMPACT_MIN = 64


@attrs.define(eq=False, slots=True)
class _Sleeper:
    """A round worker waiting for the ready line, until ``deadline`` at most (its idle timeout)."""

    deadline: float
    event: anyio.Event = attrs.field(factory=anyio.Event)
    expired: bool = False  # woken by the clock: the idle timeout passed


@attrs.define(eq=False, slots=True)
class _Slot:
    """One object with something ahead of it: its newest event and where it is in the pool."""

    uid: str
    pending: WatchEvent | None = None
    last: WatchEvent | None = None
    # While parked (no round ahead, daemons/timers running): the last event as compact JSON
    # instead of its parsed body, parsed again only if the tree restarts: (type, listed, bytes).
    # The JSON is None when the scope's body source keeps the body (a daemon's live body).
    kept: tuple[str, bool, bytes | None] | None = None
    raw: list[WatchEvent] | None = None
    where: int = _IDLE
    # Bumped whenever the slot moves: a queued window or timer that names an older token is void.
    token: int = 0
    raw_first: bool = False  # a new burst: run its raw handlers now, then the batch window
    retry: bool = False  # timed: a retry (a new event ends it early), not a bug's backoff
    failures: int = 0  # bugs so far (the backoff doubles)
    arrived: float | None = None  # the first event since the last round (metrics only)
    scope: ObjectScope | None = None  # made by the first round; kept while its tasks run

    def has_pending(self) -> bool:
        # A method, not an attribute test: the value changes across awaits.
        return self.pending is not None


@attrs.define(eq=False)
class ResourceSupervisor(Generic[S]):
    """Dispatches events by uid to a pool of round workers in ``task_group``.

    Objects with a round ahead wait in one ready line (first come, first served); a pool of
    worker tasks takes them from it, one round each, so that an object never holds a task of
    its own. It starts its workers and one clock task (while batch windows or retries are
    timed) in ``task_group``, and nothing else. :meth:`stop` makes it refuse new events and
    lets the running rounds finish; the workers exit then. Cancelling ``task_group`` cancels
    everything at once. With ``backlog_limit`` it tells the watcher (:meth:`congested`,
    :meth:`wait_uncongested`) to stop reading while that many events wait for their round or
    are in a round that has not ended.

    The pool grows as rounds wait: a worker that takes an object while others are ready and no
    other worker is free starts one more worker, so a slow handler holds up only the worker it
    runs in, never the objects behind it (up to ``max_workers``, ``None``: no bound; the
    operator passes ``settings.processing.worker_limit``). A worker with nothing to do for
    ``idle_timeout`` exits.
    """

    task_group: TaskSpawner | anyio.abc.TaskGroup
    process: ProcessFn[S]
    new_state: Callable[[], S]
    raw: RawFn | None = None
    limiter: anyio.CapacityLimiter | None = None
    idle_timeout: float = 5.0
    batch_window: float = 0.0
    name: str = "objects"
    # Answers, when an event arrives for an object with nothing queued, whether it needs no
    # round at all (our own PATCH coming back); may update the state it is given.
    settles: Callable[[WatchEvent, S], bool] | None = None
    # Backpressure: the watcher stops reading while this many events wait for or are in a round.
    backlog_limit: int | None = None
    max_workers: int | None = None
    # An idle object whose state says only that it was seen (``idle_state``) keeps no state:
    # its uid is remembered as a hash, and ``seen_state`` makes its state again for a round.
    idle_state: Callable[[S], bool] | None = None
    seen_state: Callable[[], S] | None = None
    _states: dict[str, S] = attrs.field(factory=dict, init=False)
    _seen: HashedKeys = attrs.field(factory=HashedKeys, init=False)
    # Objects with a round ahead (ready, in a window, running, or waiting for a retry).
    _slots: dict[str, _Slot] = attrs.field(factory=dict, init=False)
    # Objects with nothing ahead whose scope still runs tasks (daemons, timers).
    _parked: dict[str, _Slot] = attrs.field(factory=dict, init=False)
    _waiting: int = attrs.field(default=0, init=False)  # events queued or in a round
    _gate: BacklogGate = attrs.field(factory=BacklogGate, init=False)
    _stopping: bool = attrs.field(default=False, init=False)
    _rounds: int = attrs.field(default=0, init=False)
    _restarts: int = attrs.field(default=0, init=False)
    _instruments: Instruments | None = attrs.field(factory=current_instruments, init=False)
    # The pool: the ready line, the workers, and the event that free workers wait on.
    _ready: deque[_Slot] = attrs.field(factory=deque, init=False)
    _workers: int = attrs.field(default=0, init=False)
    _free: int = attrs.field(default=0, init=False)  # workers not inside a round
    # The workers waiting for the ready line, one event each, the last one to wait at the end:
    # an object made ready wakes one of them (the most recent, so that the others time out).
    # Their idle timeouts are the same length, so the front one is the first to expire: the
    # clock wakes it then (no cancel scope or deadline of the worker's own per wait).
    _sleepers: deque[_Sleeper] = attrs.field(factory=deque, init=False)
    # The clock: batch windows are the same length for every object, so the running ones
    # form a queue in deadline order; retries and backoffs, of any length, a heap. One task
    # (the clock) moves the objects to the ready line when they are due.
    _windows: deque[tuple[float, _Slot, int]] = attrs.field(factory=deque, init=False)
    _timers: list[tuple[float, int, _Slot, int]] = attrs.field(factory=list, init=False)
    _timer_seq: int = attrs.field(default=0, init=False)
    _timers_compact_at: int = attrs.field(default=_TIMERS_COMPACT_MIN, init=False)
    _clock_running: bool = attrs.field(default=False, init=False)
    _clock_wake: anyio.Event | None = attrs.field(default=None, init=False)
    _clock_until: float = attrs.field(default=math.inf, init=False)
    # The object scopes' callbacks, bound once: not two bound methods per object scope.
    _scope_calls: tuple[
        Callable[[_Slot], None], Callable[[_Slot, ObjectScope, BaseException], None]
    ] = attrs.field(
        default=attrs.Factory(lambda self: (self._scope_done, self._task_failed), takes_self=True),
        init=False,
    )

    def dispatch(self, event: WatchEvent) -> None:
        """Hand one event to its object (coalesced with what it has queued); never blocks."""
        if self._stopping:
            return
        uid = event.uid
        if uid is None:
            return
        slot = self._slots.get(uid)
        settles = self.settles
        if settles is not None and self.raw is None and (slot is None or slot.pending is None):
            # Nothing queued for the object: an event that settles needs no batch window and
            # no round. (A queued event is coalesced with it and the round decides.)
            state = self._states.get(uid)
            if state is not None and settles(event, state):
                if slot is not None:
                    slot.last = event  # the newest body: what a restarted tree would re-run
                elif uid not in self._parked:
                    self._forget_idle(uid)  # it went idle before its echo came back
                return
        if slot is None:
            slot = self._parked.pop(uid, None)
            if slot is None:
                slot = _Slot(uid=uid, raw=[] if self.raw is not None else None)
            self._slots[uid] = slot
        if self._instruments is not None and slot.arrived is None:
            slot.arrived = current_time()
        self._pend(slot, event)
        if slot.raw is not None:
            slot.raw.append(event)
        where = slot.where
        if where == _IDLE or (where == _TIMED and slot.retry):
            self._begin_burst(slot)  # a waiting retry is ended early by a new event
        # Otherwise it is coalesced: its window, its place in the line or its round ahead.

    def _pend(self, slot: _Slot, event: WatchEvent | None) -> None:
        """Make ``event`` the object's next round (the newest body wins); counts the backlog."""
        if event is None:
            return
        if slot.pending is None:
            self._waiting += 1
        slot.pending = event

    def _released(self) -> None:
        """A round ended (or its event was dropped): one event less held by the backlog."""
        self._waiting -= 1
        if self._gate.waited_on and (self.backlog_limit or 0) >= self._waiting * 2:
            self._gate.release()

    def _drop(self, slot: _Slot) -> None:
        """The object leaves for good (a stop, a deletion): its queued event goes with it."""
        if slot.pending is not None:
            slot.pending = None
            self._released()
        slot.where = _IDLE
        slot.token += 1
        slot.last = None
        slot.kept = None
        if self._slots.get(slot.uid) is slot:
            del self._slots[slot.uid]

    def _over(self, count: int) -> bool:
        limit = self.backlog_limit
        return limit is not None and count >= limit

    def congested(self) -> bool:
        """Whether ``backlog_limit`` events or more are held (queued or in a round): wait then.

        Synchronous and cheap: the watcher asks it after each batch of events it receives.
        """
        return self._over(self._waiting) and not self._stopping

    async def wait_uncongested(self) -> None:
        """Wait until at most half of ``backlog_limit`` events are held, or a stop.

        Returns at once if it is not :meth:`congested`; it is cancelled with its caller.
        """
        await self._gate.wait_while(self.congested)

    # -- moving a slot: window → ready line → round → idle, a retry or a backoff --------------

    def _begin_burst(self, slot: _Slot) -> None:
        """The object's first event since it was idle (or since its retry was set)."""
        if self.batch_window > 0 and not self._stopping:
            if slot.raw:
                # Raw-event handlers see the burst's first event now, not after the window.
                slot.raw_first = True
                self._make_ready(slot)
            else:
                self._open_window(slot)
        else:
            self._make_ready(slot)

    def _open_window(self, slot: _Slot) -> None:
        """Let a new burst settle for ``batch_window``: its newest body gets the round."""
        slot.where = _WINDOW
        slot.token += 1
        deadline = current_time() + self.batch_window
        self._windows.append((deadline, slot, slot.token))
        self._schedule(deadline)

    def _make_ready(self, slot: _Slot, *, requeued: bool = False) -> None:
        """Into the ready line; a free worker is woken, or one more is started if none is.

        ``requeued``: by the worker that has just run the object's round; it comes back to the
        line itself, so nobody is woken or started for it.
        """
        slot.where = _READY
        slot.token += 1
        self._ready.append(slot)
        if requeued:
            return
        if self._sleepers:
            self._sleepers.pop().event.set()
        elif not self._free:
            self._start_worker()
        # (Else a free worker is between two rounds: it looks at the line before it waits.)

    def _set_timer(self, slot: _Slot, delay: float, *, retry: bool) -> None:
        slot.where = _TIMED
        slot.token += 1
        slot.retry = retry
        deadline = current_time() + max(delay, 0.0)
        self._timer_seq += 1
        timers = self._timers
        if len(timers) >= self._timers_compact_at:
            # Waits ended early (a new event before a retry was due) stay in the heap until
            # their deadline: drop them once they could outnumber the live ones.
            timers[:] = [entry for entry in timers if entry[2].token == entry[3]]
            heapq.heapify(timers)
            self._timers_compact_at = max(2 * len(timers), _TIMERS_COMPACT_MIN)
        heapq.heappush(timers, (deadline, self._timer_seq, slot, slot.token))
        self._schedule(deadline)

    def _timer_due(self, slot: _Slot) -> None:
        """A retry's delay or a bug's backoff passed: a round on the newest (or last) body."""
        if slot.pending is None:
            self._pend(slot, self._last(slot))
        if slot.pending is None:
            self._go_idle(slot)
        elif slot.retry:
            self._make_ready(slot)
        else:
            self._begin_burst(slot)  # a restarted tree starts as a new burst

    def _go_idle(self, slot: _Slot) -> None:
        """Nothing ahead: the object holds nothing, except a scope whose tasks still run."""
        slot.where = _IDLE
        slot.token += 1
        if self._slots.get(slot.uid) is slot:
            del self._slots[slot.uid]
        if slot.scope is not None and slot.scope.active and not self._stopping:
            self._compact(slot)
            self._parked[slot.uid] = slot
        else:
            # The slot is dropped: its body goes now, and the cycle slot -> scope -> callbacks
            # -> slot is cut, so that it does not wait (with the body) for a full collection.
            slot.last = None
            slot.kept = None
            slot.scope = None
            self._forget_idle(slot.uid)

    def _forget_idle(self, uid: str) -> None:
        """An object without a round ahead or tasks: drop its state if it says only "seen"."""
        idle = self.idle_state
        state = self._states.get(uid)
        if idle is not None and self.seen_state is not None and state is not None and idle(state):
            # Nothing of the object stays but a hash: the state and the uid string were made
            # during the burst, and would keep its arenas.
            del self._states[uid]
            self._seen.add(uid)

    def _new_state(self, uid: str) -> S:
        if self.seen_state is not None and self._seen.discard(uid):
            return self.seen_state()
        return self.new_state()

    @staticmethod
    def _compact(slot: _Slot) -> None:
        """Keep the slot's last event as compact JSON (about a fifth of its parsed size).

        Between rounds the last body is needed only for a restart after a bug or a relist
        that misses the object. With a body source on the scope (a daemon's live body), not
        even that: the body is read back from there.
        """
        last = slot.last
        if last is None:
            return
        if slot.scope is not None and slot.scope.body_source is not None:
            slot.kept = (last.type, last.listed, None)  # the engine keeps it: no copy here
            slot.last = None
            return
        try:
            # A copy of the serialiser's result: its buffer may keep room to spare.
            kept = bytes(memoryview(jsonlib.dumps(last.object)))
        except (TypeError, ValueError):
            return  # not plain JSON (a body made in-process): it stays parsed
        slot.kept = (last.type, last.listed, kept)
        slot.last = None

    def _start_worker(self) -> None:
        if self._stopping:
            return
        if self.max_workers is None or self._workers < self.max_workers:
            self._workers += 1
            self._free += 1
            self.task_group.start_soon(self._work, name=f"{self.name}:rounds")

    @staticmethod
    def _last(slot: _Slot) -> WatchEvent | None:
        """The object's last event (parsed again from its compact JSON if the slot was parked)."""
        kept = slot.kept
        if slot.last is None and kept is not None:
            data = kept[2]
            if data is not None:
                slot.last = WatchEvent(type=kept[0], object=jsonlib.loads(data), listed=kept[1])
            elif slot.scope is not None and slot.scope.body_source is not None:
                raw = slot.scope.body_source.raw
                body = raw if isinstance(raw, dict) else dict(raw)
                slot.last = WatchEvent(type=kept[0], object=body, listed=kept[1])
        slot.kept = None
        return slot.last

    def _scope_done(self, slot: _Slot) -> None:
        """The last task of the object's scope ended: a parked object is forgotten then."""
        # Not a restarted tree's scope (that one still runs): nothing runs for the object.
        if self._parked.get(slot.uid) is slot and (slot.scope is None or not slot.scope.active):
            del self._parked[slot.uid]

    def forget_missing(self, present: Iterable[str]) -> None:
        """After a relist: objects known here but not listed were deleted while we were blind.

        Objects with a round ahead or tasks running get a synthetic ``DELETED`` event with the
        last body seen (also those whose state was dropped while idle, or not yet made); idle
        objects just lose their state.
        """
        present = set(present)
        known = {*self._states, *self._slots, *self._parked}
        for uid in [uid for uid in known if uid not in present]:
            slot = self._slots.get(uid) or self._parked.get(uid)
            body = None if slot is None else (slot.pending or self._last(slot))
            if body is not None:
                self.dispatch(WatchEvent(type="DELETED", object=body.object))
            elif slot is None:
                del self._states[uid]
        if self._seen:
            self._seen = HashedKeys(uid for uid in present if uid in self._seen)

    def stop(self) -> None:
        """Refuse new events; drop the rounds not yet started; running rounds finish."""
        self._stopping = True
        parked, self._parked = self._parked, {}
        for slot in parked.values():
            if slot.scope is not None:
                slot.scope.request_stop()  # they finish in the resource's task group
        for slot in list(self._slots.values()):
            if slot.where != _RUNNING:  # a running round stops its scope when it ends
                if slot.scope is not None:
                    slot.scope.request_stop()
                self._drop(slot)
        self._ready.clear()
        self._windows.clear()
        self._timers.clear()
        if self._clock_wake is not None:
            self._clock_wake.set()
        sleepers, self._sleepers = self._sleepers, deque()
        for sleeper in sleepers:
            sleeper.event.set()
        self._gate.release()  # a stopping supervisor is never congested

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called: no new events are accepted."""
        return self._stopping

    def _is_stopping(self) -> bool:
        # A call, not an attribute: the flag changes across awaits (and mypy must not narrow it).
        return self._stopping

    def statistics(self) -> SupervisorStatistics:
        """How many objects are known, how many workers run, and how many rounds ran."""
        return SupervisorStatistics(
            objects=len(self._states.keys() | self._slots.keys() | self._parked.keys())
            + len(self._seen)
            - sum(uid in self._seen for uid in self._slots),  # a round ahead, no state yet
            workers=self._workers,
            rounds=self._rounds,
            restarts=self._restarts,
            parked=len(self._parked),
            waiting=self._waiting,
            active=len(self._slots),
        )

    # -- the clock -------------------------------------------------------------------------

    def _schedule(self, deadline: float) -> None:
        """A wait was queued until ``deadline``: make sure the clock runs and sees it in time."""
        if not self._clock_running:
            self._clock_running = True
            self.task_group.start_soon(self._run_clock, name=f"{self.name}:clock")
        elif deadline < self._clock_until and self._clock_wake is not None:
            self._clock_wake.set()

    async def _run_clock(self) -> None:
        """Move due objects to the ready line, end idle waits; return when nothing is timed."""
        windows, timers = self._windows, self._timers
        try:
            while not self._stopping:
                now = current_time()
                while windows and windows[0][0] <= now:
                    _, slot, token = windows.popleft()
                    if slot.token == token:  # still that window
                        self._make_ready(slot)
                while timers and timers[0][0] <= now:
                    _, _, slot, token = heapq.heappop(timers)
                    if slot.token == token:  # still that wait: not ended by an event
                        self._timer_due(slot)
                sleepers = self._sleepers  # (a stop replaces it)
                while sleepers and sleepers[0].deadline <= now:
                    sleeper = sleepers.popleft()
                    sleeper.expired = True
                    sleeper.event.set()
                until = min(
                    windows[0][0] if windows else math.inf,
                    timers[0][0] if timers else math.inf,
                    sleepers[0].deadline if sleepers else math.inf,
                )
                if until == math.inf:
                    return
                wake = self._clock_wake = anyio.Event()
                self._clock_until = until
                with anyio.CancelScope(deadline=until):
                    await wake.wait()
                self._clock_wake = None
                self._clock_until = math.inf
        finally:
            self._clock_running = False
            self._clock_wake = None
            self._clock_until = math.inf

    # -- the workers -----------------------------------------------------------------------

    async def _work(self) -> None:
        """One worker of the pool: rounds of the objects in the ready line, one at a time."""
        ready = self._ready
        streak = 0  # rounds since this worker last let the others run
        # What one object's handlers set in context variables is not seen by the next object's
        # rounds (nor by the tasks they start): as with a task per object.
        context = WorkerContext()
        try:
            while True:
                if not ready:
                    streak = 0
                    if self._is_stopping():
                        return
                    sleeper = _Sleeper(current_time() + self.idle_timeout)
                    self._sleepers.append(sleeper)
                    if sleeper.deadline != math.inf:
                        self._schedule(sleeper.deadline)
                    try:
                        await sleeper.event.wait()
                    finally:
                        if not sleeper.event.is_set():  # cancelled: nobody woke it
                            self._sleepers.remove(sleeper)
                    if sleeper.expired and not ready:
                        return  # no await since the check: nothing can slip in between
                    continue
                if streak >= _STEP_ROUNDS:
                    # Rounds that never wait: let the watcher and the others run (counted as
                    # free meanwhile, so that the pause does not start another worker).
                    streak = 0
                    await anyio.lowlevel.checkpoint()
                    continue
                slot = ready.popleft()
                self._free -= 1
                if ready and not self._free:
                    # Others are ready and nobody else is free: a new worker takes them if
                    # this round turns out to wait (else it finds nothing and idles).
                    self._start_worker()
                try:
                    await context.wrap(self._serve(slot))
                finally:
                    self._free += 1
                    context.check()
                streak += 1
        finally:
            self._workers -= 1
            self._free -= 1

    async def _run_raw(self, slot: _Slot) -> None:
        # Every raw event, in order, one object at a time (on.event handlers; errors are theirs).
        if slot.raw and self.raw is not None:
            backlog, slot.raw = slot.raw, []
            for raw_event in backlog:
                await self.raw(raw_event)

    def _report_start(self, slot: _Slot) -> None:
        """Metrics: how long the round's first event waited (retry rounds are not counted)."""
        if self._instruments is not None and slot.arrived is not None:
            self._instruments.round_started(current_time() - slot.arrived)
            slot.arrived = None

    def _new_scope(self, slot: _Slot) -> ObjectScope:
        scope = slot.scope = ObjectScope(slot.uid, self.task_group, *self._scope_calls, slot)
        return scope

    async def _serve(self, slot: _Slot) -> None:
        """One round of one object (or the raw handlers that open its burst), then onwards."""
        if slot.where != _READY:
            return  # dropped while in the line (a stop)
        slot.where = _RUNNING
        scope = slot.scope or self._new_scope(slot)
        try:
            if slot.raw_first:
                slot.raw_first = False
                await self._run_raw(slot)
                if self._is_stopping():
                    self._stopped(slot, scope)
                else:
                    self._open_window(slot)
                return
            event = slot.pending
            if event is None:
                self._go_idle(slot)  # nothing to run (not expected: a slot is made ready with one)
                return
            slot.pending = None
            slot.last = event  # also what a restarted tree re-runs if this round crashes
            slot.kept = None
            # The event counts towards the backlog (backpressure) until its round has ended:
            # a round in flight holds its bodies, its request and its response.
            try:
                await self._run_raw(slot)
                state = self._states.get(slot.uid)
                if state is None:
                    state = self._states[slot.uid] = self._new_state(slot.uid)
                if self.limiter is not None:
                    async with self.limiter:
                        self._report_start(slot)
                        delay = await self.process(event, state, scope)
                else:
                    self._report_start(slot)
                    delay = await self.process(event, state, scope)
            finally:
                self._released()
        except Exception:
            self._failed(slot, scope)
            return
        self._rounds += 1
        slot.failures = 0  # the backoff after a bug doubles for bugs in a row only
        if event.type == "DELETED":
            # The object is gone: its tree ends, its memory is dropped.
            scope.cancel()
            self._states.pop(slot.uid, None)
            self._drop(slot)
        elif self._is_stopping():
            self._stopped(slot, scope)
        elif slot.has_pending():
            # Events came during the round: they have waited already, no new window.
            self._make_ready(slot, requeued=True)
        elif delay is not None:
            self._set_timer(slot, delay, retry=True)
        else:
            self._go_idle(slot)

    def _stopped(self, slot: _Slot, scope: ObjectScope) -> None:
        # The object's own tasks finish in the resource's task group, which the operator's
        # grace period bounds.
        scope.request_stop()
        self._drop(slot)

    def _failed(self, slot: _Slot, scope: ObjectScope) -> None:
        """A bug escaped the round: log it, restart the object's tree after a backoff."""
        slot.failures += 1
        self._restarts += 1
        scope.cancel()
        slot.scope = None  # the restarted tree gets a new one
        logger.exception(
            "A bug in the task tree of object %s (%s); restarting that tree.",
            slot.uid,
            self.name,
        )
        if self._is_stopping():
            self._drop(slot)
            return
        delay = min(_BUG_BACKOFF_FIRST * 2 ** (slot.failures - 1), _BUG_BACKOFF_MAX)
        self._set_timer(slot, delay, retry=False)

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
        if self._stopping or scope is not slot.scope:
            return
        if self._parked.get(slot.uid) is slot:
            # Nothing ahead: a round on the last body, as a new burst.
            del self._parked[slot.uid]
            self._slots[slot.uid] = slot
            self._pend(slot, self._last(slot))
            if slot.pending is None:
                del self._slots[slot.uid]  # no body to run again: the object is forgotten
                return
            self._begin_burst(slot)
            return
        if self._slots.get(slot.uid) is not slot:
            return
        # The next round sees the object again and starts what it needs anew.
        if slot.pending is None:
            self._pend(slot, self._last(slot))
        if slot.where == _TIMED and slot.retry:
            self._begin_burst(slot)
