"""Daemons and timers of live objects: started, stopped and restarted in each object's scope.

:class:`BackgroundEngine` is called by the reactor around every processing round of an object:

- :meth:`~BackgroundEngine.before_round`: if the object is being deleted, ask its daemons and
  timers to stop and wait until they are gone (each within its own timeout), so that the round
  that follows releases the finalizer only after them;
- :meth:`~BackgroundEngine.after_round`: start the daemons and timers whose filters the newest
  body passes and that are not running; ask those whose filters no longer pass to stop.

Each daemon or timer is one task in the object's :class:`~trikopf.reactor.objects.ObjectScope`
with its own cancel scope. Stopping it sets its ``stopped`` flag and puts a deadline on that
cancel scope: the task has until then to end on its own, after which it is cancelled (a sync
handler's thread is abandoned). An object without daemons or timers costs two cached registry
lookups per round and holds no task.
"""

from __future__ import annotations

import datetime
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.from_thread
import attrs

from trikopf.actions.execution import Defaults
from trikopf.actions.invocation import build_kwargs
from trikopf.actions.loggers import ObjectLogger
from trikopf.actions.patching import PatchClient, apply_patch, merge_into
from trikopf.actions.posting import EventPoster
from trikopf.bodies import Annotations, Body, Labels, Memo, Meta, Patch, Spec, Status, _View
from trikopf.causes import encode_essence, essence_of
from trikopf.client import jsonlib
from trikopf.client.errors import ClientError
from trikopf.engines.stopping import DaemonStopped, StopReason
from trikopf.processing import object_memo
from trikopf.registry import DaemonHandler, OperatorRegistry, TimerHandler
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource, WatchEvent

__all__ = [
    "BackgroundEngine",
    "BackgroundStatistics",
    "BackgroundTask",
    "DaemonPatch",
    "LiveBody",
    "ParsedBodies",
    "is_async_fn",
]

logger = logging.getLogger("trikopf.engines")

BackgroundHandler = DaemonHandler | TimerHandler

# How many objects' newest bodies stay parsed for their daemons and timers (the rest are kept
# as JSON bytes and parsed again when read): enough for the objects busy at one moment.
_PARSED_BODIES = 64


def is_async_fn(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine (a coroutine function or an async ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    )


class Scope(Protocol):
    """What the engine needs of an object's scope (:class:`~trikopf.reactor.objects.ObjectScope`)."""

    def start_soon(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        cancel_scope: anyio.CancelScope | None = None,
    ) -> None: ...

    def task_ended(self, cancel_scope: anyio.CancelScope, exc: BaseException | None) -> bool: ...

    body_source: Any  # set to the object's live body: the supervisor keeps no copy then


class DaemonPatch(Patch):
    """The ``patch`` of daemons and timers: sent when the call returns, or earlier on request.

    A daemon runs for long, so it may send what it wrote so far without returning:
    ``await patch.flush()`` in async daemons, ``patch.flush_from_thread()`` in sync ones. The
    patch is empty again afterwards. Failures to send are logged, never raised.
    """

    # No instance dict: a daemon holds its patch for its whole life. The task that sends it,
    # not a bound method of that task (one object less per daemon).
    __slots__ = ("_task",)

    def __init__(self, task: BackgroundTask) -> None:
        super().__init__()
        self._task = task

    async def flush(self) -> None:
        """Send the changes written so far as one merge-patch, and start afresh."""
        changes = merge_into({}, self)
        self.clear()
        if changes:
            await self._task.send_changes(changes)

    def flush_from_thread(self) -> None:
        """The same, from a sync daemon's thread (blocks the thread until it is sent)."""
        anyio.from_thread.run(self.flush)


class ParsedBodies:
    """A small cache of recently parsed live bodies, shared by every object of one engine.

    A daemon's object keeps its newest body as compact JSON (a third to a fifth of the parsed
    dicts' size); reading it through a view parses it once and keeps the result here until
    ``size`` other bodies were read, parsed or stored after it. Event-loop only (no locks): sync
    daemons read their views from a thread, so a miss there may parse the same bytes twice,
    which is harmless.
    """

    __slots__ = ("_entries", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[LiveBody, Mapping[str, Any]] = {}

    def get(self, live: LiveBody) -> Mapping[str, Any] | None:
        entries = self._entries
        raw = entries.pop(live, None)
        if raw is not None:
            # A hit is the freshest entry again: the least recently used go first. Put back
            # only if absent, so that a newer body stored meanwhile (while a sync daemon's
            # thread was reading) is not replaced with this older one.
            entries.setdefault(live, raw)
        return raw

    def put(self, live: LiveBody, raw: Mapping[str, Any]) -> None:
        entries = self._entries
        entries.pop(live, None)
        entries[live] = raw  # the newest at the end: the oldest go first
        if len(entries) > self.size:
            try:
                del entries[next(iter(entries))]
            except (StopIteration, KeyError, RuntimeError):  # pragma: no cover - a thread race
                pass

    def forget(self, live: LiveBody) -> None:
        self._entries.pop(live, None)


class LiveBody:
    """The newest body of an object, replaced on every event; daemons read it through views.

    Kept as compact JSON bytes and parsed on access (through ``cache``), so that an object
    whose daemon sleeps holds its body in about the size of its JSON, not of its dicts.
    """

    __slots__ = ("_cache", "_data")

    def __init__(self, raw: Mapping[str, Any], cache: ParsedBodies) -> None:
        self._cache = cache
        self._data: bytes | Mapping[str, Any] = b""
        self.update(raw)

    def update(self, raw: Mapping[str, Any]) -> None:
        """Store ``raw`` as the newest body (it is also the cache's freshest entry)."""
        try:
            # A copy of orjson's result: its buffer keeps room to spare (4 KB for a 1.5 KB body).
            self._data = bytes(memoryview(jsonlib.dumps(raw)))
        except (TypeError, ValueError):  # not JSON-able as it is (a synthetic body): keep it
            self._data = raw
        self._cache.put(self, raw)

    @property
    def raw(self) -> Mapping[str, Any]:
        """The newest body, parsed (the same mapping until it is replaced or evicted)."""
        raw = self._cache.get(self)
        if raw is None:
            data = self._data
            raw = jsonlib.loads(data) if isinstance(data, bytes) else data
            self._cache.put(self, raw)
        return raw

    def forget(self) -> None:
        """The object is gone: drop its parsed body from the cache."""
        self._cache.forget(self)


def _resolve(live: LiveBody, path: tuple[str, ...]) -> Mapping[str, Any]:
    value: Any = live.raw
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _live_view(base: type[_View]) -> Callable[[LiveBody, tuple[str, ...]], Any]:
    """A subclass of a body view whose part is looked up in the newest body on every access.

    One object per view (not a view over a live mapping): a daemon's kwargs hold seven.
    """

    class Live(base):  # type: ignore[valid-type,misc]
        __slots__ = ("_live", "_path")

        def __init__(self, live: LiveBody, path: tuple[str, ...]) -> None:
            self._live = live
            self._path = path

        @property
        def _raw(self) -> Mapping[str, Any]:
            return _resolve(self._live, self._path)

    Live.__name__ = Live.__qualname__ = f"Live{base.__name__}View"
    return Live


_LIVE_CLASSES: dict[type[_View], Callable[[LiveBody, tuple[str, ...]], Any]] = {
    cls: _live_view(cls) for cls in (Body, Spec, Meta, Status, Labels, Annotations)
}


def _part(cls: type[_View], *path: str) -> Callable[[LiveBody], Any]:
    live_cls = _LIVE_CLASSES[cls]
    return lambda live: live_cls(live, path)


# The kwargs made from the newest body, each a live view resolved on every access.
_LIVE_VIEWS: dict[str, Callable[[LiveBody], Any]] = {
    "body": _part(Body),
    "spec": _part(Spec, "spec"),
    "meta": _part(Meta, "metadata"),
    "metadata": _part(Meta, "metadata"),
    "status": _part(Status, "status"),
}
_LIVE_META = ("name", "namespace", "uid")
_LIVE_LABELS: dict[str, Callable[[LiveBody], Any]] = {
    "labels": _part(Labels, "metadata", "labels"),
    "annotations": _part(Annotations, "metadata", "annotations"),
}
_NONE_KEYS = ("reason", "diff", "old", "new")
_KWARG_NAMES = (
    *_LIVE_VIEWS,
    *_LIVE_META,
    *_LIVE_LABELS,
    "patch",
    "logger",
    "memo",
    "resource",
    "param",
    *_NONE_KEYS,
    "retry",
    "started",
    "runtime",
    "stopped",
)
_KWARG_KEYS = frozenset(_KWARG_NAMES)


class _LiveKwargs(Mapping[str, Any]):
    """A daemon's or timer's kwargs (the names of :func:`build_kwargs`, plus ``stopped``).

    Each value is made when it is read: ``body``, ``spec``, ``meta``, ``status``, ``labels``
    and ``annotations`` as live views of the object's newest body; the rest from the task.
    """

    __slots__ = ("_body", "_logger", "_meta", "_now", "_patch", "_retry", "_started", "_task")

    def __init__(
        self,
        task: BackgroundTask,
        patch: Patch,
        logger: ObjectLogger,
        retry: int,
        started: float | None,
        now: float,
        body: Body,
    ) -> None:
        self._task = task
        self._patch = patch
        self._logger = logger
        self._retry = retry
        self._started = started
        self._now = now
        self._body = body  # the logger's own view: one object for both
        self._meta: Meta | None = None  # ``meta`` and ``metadata``: one view for both

    def __getitem__(self, key: str) -> Any:
        task = self._task
        if key == "body":
            return self._body
        if key == "meta" or key == "metadata":
            view_of_meta = self._meta
            if view_of_meta is None:
                view_of_meta = self._meta = _LIVE_VIEWS["meta"](task.obj.live)
            return view_of_meta
        view = _LIVE_VIEWS.get(key) or _LIVE_LABELS.get(key)
        if view is not None:
            return view(task.obj.live)
        if key in _LIVE_META:
            meta = task.obj.live.raw.get("metadata") or {}
            return meta.get(key)
        if key == "patch":
            return self._patch
        if key == "logger":
            return self._logger
        if key == "memo":
            obj = task.obj
            return obj.memo if obj.memo is not None else task.engine.memo
        if key == "resource":
            return task.obj.resource
        if key == "param":
            return task.handler.param
        if key in _NONE_KEYS:
            return None
        if key == "retry":
            return self._retry
        if key == "started":
            started = self._started
            if started is None:
                return None
            return datetime.datetime.fromtimestamp(started, tz=datetime.timezone.utc)
        if key == "runtime":
            started = self._started
            if started is None:
                return datetime.timedelta(0)
            return datetime.timedelta(seconds=max(0.0, self._now - started))
        if key == "stopped":
            return task.stopped
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return key in _KWARG_KEYS

    def __iter__(self) -> Iterator[str]:
        return iter(_KWARG_NAMES)

    def __len__(self) -> int:
        return len(_KWARG_NAMES)


@attrs.frozen(kw_only=True)
class BackgroundStatistics:
    """How many daemons and timers run now, and for how many objects."""

    daemons: int
    timers: int
    objects: int


@attrs.define(eq=False)
class BackgroundTask:
    """One daemon or timer of one object: its flag, its cancel scope, and its end.

    The cancel scope is the only one the task has: the object's scope cancels it when the object
    is gone, and a stop request puts a deadline on it.
    """

    engine: BackgroundEngine
    obj: _ObjectTasks
    handler: BackgroundHandler
    stopped: DaemonStopped
    scope: Scope  # the object scope it runs in (the object's may be replaced meanwhile)
    cancel_scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    stop_started: float | None = None
    ended: bool = False
    # Made only when someone waits for the end (a deletion): a running daemon costs no event.
    _done: anyio.Event | None = None

    async def wait_until_ended(self) -> None:
        """Return when the task has ended (at once if it has); cancelled with the caller."""
        if self.ended:
            return
        if self._done is None:
            self._done = anyio.Event()
        await self._done.wait()

    @property
    def is_daemon(self) -> bool:
        return isinstance(self.handler, DaemonHandler)

    @property
    def kind(self) -> str:
        return "Daemon" if self.is_daemon else "Timer"

    @property
    def logger(self) -> ObjectLogger:
        # Over the live view: the logger holds no parsed body of its own.
        return self.engine.object_logger(_LIVE_VIEWS["body"](self.obj.live))

    def request_stop(self, reason: StopReason) -> None:
        """Set the flag and give the task its graceful window; returns at once."""
        if self.stopped:
            return
        self.stopped.set_(reason)
        window = self.engine.grace_of(self.handler)
        now = anyio.current_time()
        self.stop_started = now
        self.cancel_scope.deadline = min(self.cancel_scope.deadline, now + window)

    def kwargs(
        self, *, retry: int, started: float | None, now: float
    ) -> tuple[Mapping[str, Any], Patch]:
        """The handler's kwargs over the newest body (live views), with a fresh ``patch``.

        A small mapping that makes each value when it is read: a daemon that sleeps keeps
        no dict of two dozen entries and no views it never used.
        """
        patch = DaemonPatch(self)
        body = _LIVE_VIEWS["body"](self.obj.live)
        logger = self.engine.object_logger(body)
        return _LiveKwargs(self, patch, logger, retry, started, now, body), patch

    async def send(self, result: Any, patch: Patch) -> None:
        """Store ``result`` in ``status.<id>`` and send the handler's ``patch`` (one PATCH)."""
        changes = merge_into({}, patch)
        if result is not None:
            merge_into(changes, {"status": {self.handler.id: result}})
        await self.send_changes(changes)

    async def send_changes(self, changes: dict[str, Any]) -> None:
        """Send ``changes`` as one merge-patch of the object; failures are logged, not raised."""
        if not changes:
            return
        try:
            await apply_patch(self.engine.client, self.obj.resource, self.obj.live.raw, changes)
        except ClientError as exc:
            self.logger.error(
                "%s %r: its result could not be sent: %s", self.kind, self.handler.id, exc
            )

    # The task's body (run_daemon, run_timer) runs inside ``with task:``: the cancel scope is
    # entered and the end is reported (to the engine and to the object scope) without a
    # wrapper coroutine, neither ours nor the scope's (two frames less per daemon).
    def __enter__(self) -> BackgroundTask:
        self.engine.count(self, +1)
        self.cancel_scope.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            escaped = None if self.cancel_scope.__exit__(exc_type, exc, tb) else exc
        except BaseException as raised:  # the cancel scope's own (e.g. a mis-nesting)
            escaped = raised
        try:
            self._end()
        except BaseException as raised:  # a bug of ours: the object's tree restarts
            escaped = raised
        # The last step of the task: a bug (an Exception) goes to the object scope's owner.
        handled = self.scope.task_ended(self.cancel_scope, escaped)
        if escaped is None or handled:
            return True
        if escaped is exc:
            return False
        raise escaped

    def _end(self) -> None:
        engine = self.engine
        engine.count(self, -1)
        self.ended = True
        if self._done is not None:
            self._done.set()
        if self.obj.tasks.get(self.handler.id) is self:
            del self.obj.tasks[self.handler.id]
        engine.forget_if_empty(self.obj)
        self._report()

    def _report(self) -> None:
        if self.stop_started is None:
            return
        # Logged, not posted as k8s Events: an exiting operator would post one per object.
        log = ObjectLogger(self.obj.live.raw, poster=None)
        took = anyio.current_time() - self.stop_started
        reason = self.stopped.reason.value if self.stopped.reason else "stop requested"
        # The scope is also the one the object cancels when it is gone: only a passed deadline
        # means that the task overran its graceful window.
        overran = anyio.current_time() >= self.cancel_scope.deadline
        if self.cancel_scope.cancelled_caught and overran:
            how = "abandoned in its thread" if self.engine.is_sync(self.handler) else "cancelled"
            log.warning(
                "%s %r did not stop within %gs (%s) and was %s.",
                self.kind,
                self.handler.id,
                self.engine.grace_of(self.handler),
                reason,
                how,
            )
        else:
            log.info("%s %r has stopped in %.3gs (%s).", self.kind, self.handler.id, took, reason)


@attrs.define(eq=False)
class _ObjectTasks:
    """The background state of one object: its running tasks and what must not start again."""

    uid: str
    resource: Resource
    scope: Scope
    live: LiveBody
    tasks: dict[str, BackgroundTask] = attrs.field(factory=dict)
    # The handlers that ended for good (returned, failed); made on the first one.
    finished: set[str] | None = None
    essence: str | None = None
    last_change: float = 0.0
    memo: Any = None  # the object's own memo, shared with its change handlers


@attrs.define(eq=False)
class BackgroundEngine:
    """Runs the daemons and timers of every object of one operator (see the module docs).

    Starts tasks only in the object scopes it is given; owns none itself. :meth:`shutdown`
    asks every task to stop (the operator is exiting); the scopes' owners wait for them.
    """

    registry: OperatorRegistry
    settings: OperatorSettings
    client: PatchClient
    memo: Any = attrs.field(factory=Memo)
    poster: EventPoster | None = None
    _objects: dict[str, _ObjectTasks] = attrs.field(factory=dict, init=False)
    # The parsed newest bodies of the objects whose daemons and timers read them lately.
    _bodies: ParsedBodies = attrs.field(factory=lambda: ParsedBodies(_PARSED_BODIES), init=False)
    _daemons: int = attrs.field(default=0, init=False)
    _timers: int = attrs.field(default=0, init=False)
    _exiting: bool = attrs.field(default=False, init=False)
    # The defaults of the running daemons, one object for all while the settings are the same.
    _shared_defaults: Defaults | None = attrs.field(default=None, init=False)

    def statistics(self) -> BackgroundStatistics:
        """How many daemons and timers run right now."""
        return BackgroundStatistics(
            daemons=self._daemons, timers=self._timers, objects=len(self._objects)
        )

    @property
    def defaults(self) -> Defaults:
        execution = self.settings.execution
        return Defaults(
            backoff=execution.backoff,
            timeout=execution.timeout,
            retries=execution.retries,
            thread_limit=execution.max_sync_threads,
        )

    def shared_defaults(self, **changes: Any) -> Defaults:
        """:attr:`defaults` with ``changes``, the same object as the last time if equal to it.

        A daemon keeps its defaults for its whole life: equal ones are shared, not one each.
        """
        defaults = attrs.evolve(self.defaults, **changes)
        shared = self._shared_defaults
        if shared is None or shared != defaults:
            self._shared_defaults = shared = defaults
        return shared

    def grace_of(self, handler: BackgroundHandler) -> float:
        """How long a task of ``handler`` may take to end after being asked to stop.

        For daemons ``cancellation_backoff`` and ``cancellation_timeout`` add up (the totals of
        Kopf's two stages); a daemon that names no timeout, and every timer, get
        ``settings.background.cancellation_timeout``: a stop is always bounded.
        """
        default = self.settings.background.cancellation_timeout
        if isinstance(handler, DaemonHandler):
            timeout = handler.cancellation_timeout
            return (handler.cancellation_backoff or 0.0) + (
                timeout if timeout is not None else default
            )
        return default

    @staticmethod
    def is_sync(handler: BackgroundHandler) -> bool:
        """Whether the handler runs in a thread (it is not a coroutine function)."""
        return not is_async_fn(handler.fn)

    def object_logger(self, raw: Mapping[str, Any]) -> ObjectLogger:
        posting = self.settings.posting
        poster = self.poster if posting.enabled else None
        return ObjectLogger(raw, poster=poster, level=posting.level)

    def count(self, task: BackgroundTask, delta: int) -> None:
        if task.is_daemon:
            self._daemons += delta
        else:
            self._timers += delta

    def forget_if_empty(self, obj: _ObjectTasks) -> None:
        if not obj.tasks and not obj.finished and self._objects.get(obj.uid) is obj:
            del self._objects[obj.uid]
            obj.live.forget()

    def idle_for(self, task: BackgroundTask) -> float:
        """Seconds since the object's essence last changed (for ``idle`` timers)."""
        return anyio.current_time() - task.obj.last_change

    def shutdown(self) -> None:
        """The operator is exiting: ask every daemon and timer to stop; returns at once."""
        self._exiting = True
        for obj in list(self._objects.values()):
            for task in list(obj.tasks.values()):
                task.request_stop(StopReason.OPERATOR_EXITING)

    async def before_round(self, *, resource: Resource, event: WatchEvent, scope: Scope) -> None:
        """If the object is being deleted, stop its daemons and timers and wait until they end.

        Returns when every task of the object has ended: on its own within its graceful window,
        or cancelled at the window's end. Does nothing (and never awaits) for other objects.
        """
        raw = event.object
        meta = raw.get("metadata") or {}
        if event.type == "DELETED" or not meta.get("deletionTimestamp"):
            return
        obj = self._objects.get(event.uid or "")
        if obj is None or obj.scope is not scope or not obj.tasks:
            return
        obj.live.update(raw)
        waiting = list(obj.tasks.values())
        for task in waiting:
            task.request_stop(StopReason.DELETED)
        for task in waiting:
            await task.wait_until_ended()

    async def after_round(
        self, *, resource: Resource, event: WatchEvent, state: Any, scope: Scope
    ) -> None:
        """Start the daemons and timers that should run for this body; stop those that should not.

        Never waits for a task: starting and stop requests return at once (an :class:`ObjectHook`
        of the reactor).
        """
        uid = event.uid
        if uid is None:
            return
        if event.type == "DELETED":
            # The scope is cancelled right after this; the object's memory goes with it.
            gone = self._objects.pop(uid, None)
            if gone is not None:
                gone.live.forget()
                for task in gone.tasks.values():
                    task.request_stop(StopReason.DELETED)
            return
        daemons = self.registry.daemon_handlers_for(resource)
        timers = self.registry.timer_handlers_for(resource)
        if not daemons and not timers:
            return
        raw = event.object
        obj = self._objects.get(uid)
        if obj is not None and obj.scope is not scope:
            # A new worker (the old one went idle, or its tree was restarted after a bug): the
            # old scope has ended with its tasks; what has finished stays finished.
            obj.scope = scope
            obj.tasks.clear()
        if obj is None:
            live = LiveBody(raw, self._bodies)
            obj = _ObjectTasks(uid=uid, resource=resource, scope=scope, live=live)
            obj.last_change = anyio.current_time()
            self._objects[uid] = obj
        else:
            obj.live.update(raw)
        scope.body_source = obj.live  # updated in every round: the newest body
        if obj.memo is None:
            obj.memo = object_memo(state, self.memo)
        prefix = self.settings.persistence.annotation_prefix
        if timers and any(t.idle is not None for t in timers):
            essence = encode_essence(essence_of(raw, prefix=prefix))
            if essence != obj.essence:
                if obj.essence is not None:
                    obj.last_change = anyio.current_time()
                obj.essence = essence
        meta = raw.get("metadata") or {}
        deleting = bool(meta.get("deletionTimestamp"))
        kwargs: dict[str, Any] | None = None  # built only if some filter needs it
        handlers: tuple[BackgroundHandler, ...] = (*daemons, *timers)
        for handler in handlers:
            try:
                if (
                    handler.labels is None
                    and handler.annotations is None
                    and handler.when is None
                    and handler.value is None
                    and not handler.field
                ):
                    matches = True
                else:
                    if kwargs is None:
                        kwargs = build_kwargs(
                            body=Body(raw),
                            patch=Patch(),
                            logger=None,
                            memo=self.memo,
                            resource=resource,
                        )
                    matches = handler.passes_filters(raw, kwargs)
            except Exception:
                self.object_logger(raw).exception(
                    "The filters of %r failed; treated as not matching.", handler.id
                )
                matches = False
            running = obj.tasks.get(handler.id)
            if not matches:
                if obj.finished:
                    obj.finished.discard(handler.id)  # matching again later starts it afresh
                if running is not None:
                    running.request_stop(StopReason.FILTERED_OUT)
            elif (
                running is None
                and not deleting
                and not self._exiting
                and not (obj.finished and handler.id in obj.finished)
            ):
                self._start(obj, handler)
        self.forget_if_empty(obj)

    def _start(self, obj: _ObjectTasks, handler: BackgroundHandler) -> None:
        from trikopf.engines.daemons import run_daemon, stop_flag_for
        from trikopf.engines.timers import run_timer

        task = BackgroundTask(
            engine=self,
            obj=obj,
            handler=handler,
            stopped=stop_flag_for(self, handler),
            scope=obj.scope,
        )
        obj.tasks[handler.id] = task
        body = run_daemon if isinstance(handler, DaemonHandler) else run_timer
        obj.scope.start_soon(
            body,
            task,
            name=f"{task.kind.lower()}:{handler.id}:{obj.uid}",
            # One cancel scope per task, entered by the body, which reports its end itself.
            cancel_scope=task.cancel_scope,
        )
