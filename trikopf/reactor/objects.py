"""One supervisor per object: rounds one at a time, bursts coalesced, idle objects hold no task.

A :class:`ResourceSupervisor` receives the events of one (resource, namespace) watch through
:meth:`~ResourceSupervisor.dispatch` (synchronous, never blocks the watcher) and keeps, per
object uid, at most one worker task in the task group it is given. The worker:

- runs one processing round at a time; events arriving during a round are coalesced, and the
  next round sees only the newest body;
- waits ``batch_window`` after the first event of a burst, so that a burst costs one round;
- honours the round's requested delay (a retry): it sleeps until then, or until a new event
  wakes it early;
- exits after ``idle_timeout`` with nothing to do, even while tasks run in its object scope;
  its small per-object state stays in a dict until the object is deleted (or, if it says only
  that the object was seen, is dropped and the uid kept as a hash), and a scope with running
  tasks stays with it (parked by uid) until they end or the next worker takes it over; while
  it waits, it keeps the object's last body as compact JSON;
- waits its batch window and its idle timeout on an event that the supervisor's clock (one
  task per supervisor, only while such waits run) sets when they are due: both are the same
  length for every object, so the running waits form two queues in deadline order, and a
  worker costs no cancel scope, deadline or Cancelled exception per wait;
- uses the object's :class:`ObjectScope`, the object's share of the tasks where daemons and
  timers run (started by ``trikopf/engines/`` through the ``process`` callable); deleting the
  object cancels that scope. A daemon object between events holds its daemons' tasks only: a
  task of its scope ending, or a bug in one, starts a worker again only when there is a round
  to run (a bug's restart re-runs the last body).

A bug (an exception escaping a round or the object scope) is logged, and the object's tree is
restarted after a short backoff; other objects are not affected.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Generic, Protocol, TypeVar, cast

import anyio
import anyio.abc
import attrs
import sniffio
import trio

from trikopf._util.backlog import BacklogGate
from trikopf._util.clock import current_time
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
    """Where a supervisor's tasks (object workers, daemons, timers) run, inside ``task_group``.

    Under Trio a nursery of its own (nested in ``task_group``, so that cancelling the group
    cancels it): AnyIO's task groups wrap every task in a handle with a cancel scope, an event
    and one more coroutine frame, which costs a worker per object about twice what Trio's own
    spawn does. Elsewhere ``task_group`` itself. Leaving the block waits for the tasks, as
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

    - Tasks started here belong to the object. They do not keep the object's worker alive: the
      supervisor keeps the scope (and the object's last body) while any of them runs, and
      hands it to the object's next worker.
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
    _on_task_done: Callable[[], None]
    _on_bug: Callable[[ObjectScope, BaseException], None]
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
        a cancel scope of its own passes it as ``cancel_scope`` (``fn`` enters it): the object
        then cancels that one, and the task costs one cancel scope instead of two.
        """
        if self._cancelled:
            return
        entered = cancel_scope is None
        if cancel_scope is None:
            cancel_scope = anyio.CancelScope()
        if self._cancel_scope is None:
            self._cancel_scope = cancel_scope
        elif self._more_cancel_scopes is None:
            self._more_cancel_scopes = {cancel_scope}
        else:
            self._more_cancel_scopes.add(cancel_scope)
        self.active += 1  # counted now, so that the worker cannot go idle before it starts
        spawner = self._task_group
        name = name or getattr(fn, "__name__", None)
        if isinstance(spawner, anyio.abc.TaskGroup):
            # On Trio without AnyIO's per-task handle: a daemon lives long.
            start_soon_lean(spawner, self._run_task, cancel_scope, entered, fn, args, name=name)
        else:  # a Trio nursery already (see open_task_spawner)
            spawner.start_soon(self._run_task, cancel_scope, entered, fn, args, name=name)

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
            if self._cancel_scope is cancel_scope:
                self._cancel_scope = None
            elif self._more_cancel_scopes is not None:
                self._more_cancel_scopes.discard(cancel_scope)
                if not self._more_cancel_scopes:
                    self._more_cancel_scopes = None
            self.active -= 1
            if not self.active:
                self._on_task_done()  # the worker may go idle now

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


RawFn = Callable[[WatchEvent], Awaitable[None]]


@attrs.frozen(kw_only=True)
class SupervisorStatistics:
    """A snapshot of one supervisor: known objects, live workers, rounds run so far.

    ``parked``: objects without a worker whose scope still runs tasks (daemons, timers);
    ``waiting``: events waiting for their round to start (what backpressure counts).
    """

    objects: int
    workers: int
    rounds: int
    restarts: int
    parked: int = 0
    waiting: int = 0


@attrs.define(eq=False, slots=True)
class _Slot:
    """The mailbox of one live worker."""

    uid: str
    pending: WatchEvent | None = None
    last: WatchEvent | None = None
    # While parked (no worker, daemons/timers running): the last event as compact JSON instead
    # of its parsed body, parsed again only if the tree restarts: (type, listed, bytes).
    # The JSON is None when the scope's body source keeps the body (a daemon's live body).
    kept: tuple[str, bool, bytes | None] | None = None
    raw: list[WatchEvent] | None = None
    # Exists only while the worker waits: a busy or fresh object allocates no event.
    waiter: anyio.Event | None = None
    # Exists only while the worker waits out its batch window (set by the supervisor's clock).
    window: anyio.Event | None = None
    # Counts the worker's idle waits: the clock wakes a worker only for the wait it timed.
    waits: int = 0
    arrived: float | None = None  # the first event since the last round (metrics only)
    scope: ObjectScope | None = None  # made by the first worker; kept while its tasks run

    def has_pending(self) -> bool:
        # A method, not an attribute test: the value changes across awaits.
        return self.pending is not None

    def wakeup_soon(self) -> None:
        """Wake the worker if it waits; a busy worker looks at its slot before waiting."""
        if self.waiter is not None:
            self.waiter.set()

    async def wait(self) -> None:
        """Wait until woken: by an event, the object's scope, a stop, or the supervisor's clock."""
        waiter = self.waiter = anyio.Event()
        try:
            await waiter.wait()
        finally:
            self.waiter = None

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

    Starts one worker task per busy object in ``task_group``, and one clock task while batch
    windows or idle timeouts run, and nothing else. :meth:`stop` makes it refuse new events and
    lets workers finish their current round and exit; cancelling ``task_group`` cancels
    everything at once. With ``backlog_limit`` it tells the watcher (:meth:`congested`,
    :meth:`wait_uncongested`) to stop reading while that many events wait for their round or
    are in a round that has not ended.
    """

    task_group: TaskSpawner | anyio.abc.TaskGroup
    process: ProcessFn[S]
    new_state: Callable[[], S]
    raw: RawFn | None = None
    limiter: anyio.CapacityLimiter | None = None
    idle_timeout: float = 5.0
    batch_window: float = 0.0
    name: str = "objects"
    # Answers, when an event arrives for an object whose worker has nothing queued, whether it
    # needs no round at all (our own PATCH coming back); may update the state it is given.
    settles: Callable[[WatchEvent, S], bool] | None = None
    # Backpressure: the watcher stops reading while this many events wait for or are in a round.
    backlog_limit: int | None = None
    # An idle object whose state says only that it was seen (``idle_state``) keeps no state:
    # its uid is remembered as a hash, and ``seen_state`` makes its state again when it is busy.
    idle_state: Callable[[S], bool] | None = None
    seen_state: Callable[[], S] | None = None
    _states: dict[str, S] = attrs.field(factory=dict, init=False)
    _seen: HashedKeys = attrs.field(factory=HashedKeys, init=False)
    _slots: dict[str, _Slot] = attrs.field(factory=dict, init=False)
    # Objects without a worker whose scope still runs tasks (daemons, timers).
    _parked: dict[str, _Slot] = attrs.field(factory=dict, init=False)
    _waiting: int = attrs.field(default=0, init=False)  # events queued or in a round
    _gate: BacklogGate = attrs.field(factory=BacklogGate, init=False)
    _stopping: bool = attrs.field(default=False, init=False)
    _rounds: int = attrs.field(default=0, init=False)
    _restarts: int = attrs.field(default=0, init=False)
    _instruments: Instruments | None = attrs.field(factory=current_instruments, init=False)
    # The clock: batch windows and idle timeouts are the same length for every object, so
    # the waits that run now form two queues in deadline order, and one task (the clock)
    # ends them when they are due. A worker waits on an event, not on a deadline of its own:
    # no cancel scope and no Cancelled exception per wait.
    _windows: deque[tuple[float, _Slot]] = attrs.field(factory=deque, init=False)
    _idles: deque[tuple[float, _Slot, int]] = attrs.field(factory=deque, init=False)
    _clock_running: bool = attrs.field(default=False, init=False)
    _clock_wake: anyio.Event | None = attrs.field(default=None, init=False)
    _clock_until: float = attrs.field(default=math.inf, init=False)

    def dispatch(self, event: WatchEvent) -> None:
        """Hand one event to its object's worker, starting the worker if needed; never blocks."""
        if self._stopping:
            return
        uid = event.uid
        if uid is None:
            return
        slot = self._slots.get(uid)
        settles = self.settles
        if settles is not None and self.raw is None and (slot is None or slot.pending is None):
            # Nothing queued for the object: an event that settles needs no wake, no batch
            # window and no round. (A queued event is coalesced with it and the round decides.)
            state = self._states.get(uid)
            if state is not None and settles(event, state):
                if slot is not None:
                    slot.last = event  # the newest body: what a restarted tree would re-run
                    if slot.pending is None:
                        self._compact(slot)  # an idle worker keeps it as JSON
                elif uid not in self._parked:
                    self._forget_idle(uid)  # its worker left before its echo came back
                return
        if slot is None:
            slot = self._parked.pop(uid, None)
            if slot is None:
                slot = _Slot(uid=uid, raw=[] if self.raw is not None else None)
            self._start_worker(slot)
        if self._instruments is not None and slot.arrived is None:
            slot.arrived = current_time()
        self._pend(slot, event)
        if slot.raw is not None:
            slot.raw.append(event)
        slot.wakeup_soon()

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
        """The worker exits for good (a stop, a deletion): its queued event goes with it."""
        if slot.pending is not None:
            slot.pending = None
            self._released()
        # A timed wait of the clock may still name the slot until its deadline: it keeps no body.
        slot.last = None
        slot.kept = None
        self._slots.pop(slot.uid, None)

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

    def _start_worker(self, slot: _Slot) -> None:
        self._slots[slot.uid] = slot
        self.task_group.start_soon(self._serve_object, slot, name=f"{self.name}:{slot.uid}")

    def _park(self, slot: _Slot) -> None:
        """The worker exits; its scope stays with the object while tasks run in it."""
        if slot.scope is not None and slot.scope.active and not self._stopping:
            self._compact(slot)
            self._slots.pop(slot.uid, None)
            self._parked[slot.uid] = slot
        else:
            self._slots.pop(slot.uid, None)
            self._forget_idle(slot.uid)

    def _forget_idle(self, uid: str) -> None:
        """An object without worker or tasks: drop its state if it says only "seen"."""
        idle = self.idle_state
        state = self._states.get(uid)
        if idle is not None and self.seen_state is not None and state is not None and idle(state):
            # Nothing of the object stays but a hash: the state, the uid string and the
            # slot were made during the burst, and would keep its arenas.
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
        that misses the object; a burst's idle workers would otherwise hold thousands of
        parsed bodies until they exit.
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
        """The last task of the object's scope ended: wake its worker, or forget the scope."""
        if self._parked.get(slot.uid) is slot:
            if slot.scope is None or not slot.scope.active:  # not a restarted tree's scope
                del self._parked[slot.uid]  # nothing runs for the object any more
        else:
            slot.wakeup_soon()  # the worker may go idle now

    def forget_missing(self, present: Iterable[str]) -> None:
        """After a relist: objects known here but not listed were deleted while we were blind.

        Live workers get a synthetic ``DELETED`` event with the last body they saw; idle
        objects just lose their state.
        """
        present = set(present)
        for uid in [uid for uid in self._states if uid not in present]:
            slot = self._slots.get(uid) or self._parked.get(uid)
            body = None if slot is None else (slot.pending or self._last(slot))
            if body is not None:
                self.dispatch(WatchEvent(type="DELETED", object=body.object))
            elif slot is None:
                del self._states[uid]
        if self._seen:
            self._seen = HashedKeys(uid for uid in present if uid in self._seen)

    def stop(self) -> None:
        """Refuse new events; wake every worker so that it exits after its current round."""
        self._stopping = True
        parked, self._parked = self._parked, {}
        for slot in parked.values():
            if slot.scope is not None:
                slot.scope.request_stop()  # they finish in the resource's task group
        for slot in self._slots.values():
            slot.wakeup_soon()
            if slot.window is not None:
                slot.window.set()
        self._windows.clear()
        self._idles.clear()
        if self._clock_wake is not None:
            self._clock_wake.set()
        self._gate.release()  # a stopping supervisor is never congested

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
            objects=len(self._states.keys() | self._slots.keys() | self._parked.keys())
            + len(self._seen)
            - sum(uid in self._seen for uid in self._slots),  # a worker starting again
            workers=len(self._slots),
            rounds=self._rounds,
            restarts=self._restarts,
            parked=len(self._parked),
            waiting=self._waiting,
        )

    def _schedule(self, deadline: float) -> None:
        """A wait was queued until ``deadline``: make sure the clock runs and sees it in time."""
        if not self._clock_running:
            self._clock_running = True
            self.task_group.start_soon(self._run_clock, name=f"{self.name}:clock")
        elif deadline < self._clock_until and self._clock_wake is not None:
            self._clock_wake.set()

    async def _run_clock(self) -> None:
        """End the queued waits when they are due; return when none is left (or on a stop)."""
        windows, idles = self._windows, self._idles
        try:
            while not self._stopping:
                now = current_time()
                while windows and windows[0][0] <= now:
                    window = windows.popleft()[1].window
                    if window is not None:
                        window.set()
                while idles and idles[0][0] <= now:
                    _, slot, token = idles.popleft()
                    if slot.waits == token:  # still that wait: not woken and waiting again
                        slot.wakeup_soon()
                if windows and idles:
                    until = min(windows[0][0], idles[0][0])
                elif windows or idles:
                    until = (windows or idles)[0][0]
                else:
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

    async def _wait_window(self, slot: _Slot) -> None:
        """Wait ``batch_window`` (new events do not end it; a stop does)."""
        if self._stopping:
            return  # the clock does not run any more
        window = slot.window = anyio.Event()
        deadline = current_time() + self.batch_window
        self._windows.append((deadline, slot))
        self._schedule(deadline)
        try:
            await window.wait()
        finally:
            slot.window = None

    async def _wait_idle(self, slot: _Slot) -> float:
        """Wait for something to do, at most ``idle_timeout`` (then woken by the clock).

        Returns the deadline of the wait (the worker tells a timeout from an early wake by it).
        """
        deadline = current_time() + self.idle_timeout
        if self._stopping:
            return deadline  # the clock does not run any more
        if deadline == math.inf:
            await slot.wait()  # never idle: nothing for the clock to time (or to keep queued)
            return deadline
        slot.waits += 1
        self._idles.append((deadline, slot, slot.waits))
        self._schedule(deadline)
        await slot.wait()
        return deadline

    def _report_start(self, slot: _Slot) -> None:
        """Metrics: how long the round's first event waited (retry rounds are not counted)."""
        if self._instruments is not None and slot.arrived is not None:
            self._instruments.round_started(current_time() - slot.arrived)
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
        if self._stopping or scope is not slot.scope:
            return
        if self._parked.get(slot.uid) is slot:
            # No worker: start one, for a round on the last body.
            del self._parked[slot.uid]
            self._pend(slot, self._last(slot))
            self._start_worker(slot)
            return
        if self._slots.get(slot.uid) is not slot:
            return
        # The next round sees the object again and starts what it needs anew.
        if slot.pending is None:
            self._pend(slot, self._last(slot))
        slot.wakeup_soon()

    async def _serve_object(self, slot: _Slot) -> None:
        failures = 0
        while True:
            scope = slot.scope
            if scope is None:
                scope = slot.scope = ObjectScope(
                    slot.uid,
                    self.task_group,
                    functools.partial(self._scope_done, slot),
                    functools.partial(self._task_failed, slot),
                )
            try:
                await self._serve_rounds(slot, scope)
                return
            except Exception:
                failures += 1
                self._restarts += 1
                scope.cancel()
                slot.scope = None  # the restarted tree gets a new one
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
                self._drop(slot)
                return
            if slot.pending is None:
                self._pend(slot, self._last(slot))

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
                self._drop(slot)
                return
            if slot.pending is None:
                idle_until = math.inf
                if retry_at is not None:
                    await slot.wait_up_to(max(retry_at - current_time(), 0.0))
                else:
                    idle_until = await self._wait_idle(slot)
                if self._is_stopping():
                    continue
                if not slot.has_pending():
                    if retry_at is not None:
                        if current_time() < retry_at:
                            continue  # woken by the scope, not by time: keep waiting
                        # The delay passed with no new event: a retry round on the last body.
                        retry_at = None
                        last = self._last(slot)
                        if last is None:
                            continue
                        self._pend(slot, last)
                    elif scope.active and current_time() < idle_until:
                        continue  # woken early, with nothing to do: keep waiting
                    else:
                        # Idle (its scope's tasks, if any, run on without it). No await since
                        # the wait above, so no event can slip in between.
                        self._park(slot)
                        return
                else:
                    burst = True
            if burst and self.batch_window > 0:
                # Raw-event handlers see the burst's first event now, not after the window.
                await self._run_raw(slot)
                # A new burst: let it settle, then only its newest body is processed.
                await self._wait_window(slot)
                if self._is_stopping():
                    continue
            burst = False

            event = slot.pending
            assert event is not None
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
            self._rounds += 1
            retry_at = None if delay is None else current_time() + max(delay, 0.0)
            if retry_at is None and event.type != "DELETED" and slot.pending is None:
                self._compact(slot)  # it may wait long for the next event: no parsed body

            if event.type == "DELETED":
                # The object is gone: its tree ends, its memory is dropped.
                scope.cancel()
                self._states.pop(slot.uid, None)
                self._drop(slot)
                return
