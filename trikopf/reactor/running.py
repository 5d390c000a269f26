"""The operator's root: ``operate()`` and ``run()``, and the graceful stop.

The task tree that :func:`operate` builds::

    operate                                  root task group
    ├── signals / stop flag                  request a graceful stop (second signal: at once)
    ├── event poster                         Kubernetes Events, batched, off the hot path
    └── drain scope                          gets a deadline when the stop begins
        └── watchers task group
            ├── discovery                    resources by namespaces → starts/stops watchers
            └── one task group per (resource, namespace)
                 ├── the list + watch stream
                 └── a pool of round workers for the busy objects; each object's ObjectScope
                     (daemons, timers)

A graceful stop cancels discovery and every watch stream, lets each object finish the round it
is in (new rounds are not started), and bounds all of it by ``processing.grace_period``; then
everything still running is cancelled, the poster flushes, and the client is closed.
"""

from __future__ import annotations

import functools
import logging
import math
import signal
import threading
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol, cast

import anyio
import anyio.abc
import attrs

from trikopf._util.clock import current_time
from trikopf._util.instruments import set_instruments
from trikopf._util.memory import serve_memory_release
from trikopf.actions.posting import EventPoster, set_current_poster
from trikopf.bodies import Memo
from trikopf.client import ApiClient, ClientSettings, ConnectionInfo, discover, open_client
from trikopf.engines.activities import ActivityError
from trikopf.engines.background import BackgroundEngine
from trikopf.engines.services import OperatorServices
from trikopf.processing import (
    ObjectState,
    prepare_raw_handler,
    process_event,
    settle_own_echo,
)
from trikopf.reactor.discovery import StartupError, WatchSet, serve_discovery
from trikopf.reactor.namespaces import NamespaceSelector
from trikopf.reactor.objects import ObjectScope, ResourceSupervisor, open_task_spawner
from trikopf.reactor.raw import RawDispatcher
from trikopf.reactor.watching import serve_watch, where
from trikopf.registry import OperatorRegistry, get_default_registry
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource, WatchEvent

__all__ = ["ObjectHook", "ReadyFlag", "StartupError", "StopFlag", "operate", "run"]

logger = logging.getLogger("trikopf.reactor")


class StopFlag(Protocol):
    """What ``stop_flag`` must be: an ``anyio.Event``, a ``trio.Event``, an ``asyncio.Event``."""

    async def wait(self) -> Any: ...


class ReadyFlag(Protocol):
    """What ``ready_flag`` must be: an event with ``set()`` (anyio, trio, asyncio, threading)."""

    def set(self) -> Any: ...


class ObjectHook(Protocol):
    """Called after every processing round of an object, in the round worker that ran it.

    The seam for ``trikopf/engines/`` (daemons, timers): a hook looks at the newest body and
    starts or stops the object's long-running tasks in ``scope`` (see :class:`ObjectScope`).
    It must return promptly; what it starts runs in the scope, not in the hook.
    """

    def __call__(
        self,
        *,
        resource: Resource,
        event: WatchEvent,
        state: Any,
        scope: ObjectScope,
    ) -> Coroutine[Any, Any, None]: ...


@attrs.define(eq=False)
class _StartedOnce:
    """A task status that remembers whether ``started()`` was called (to report it once)."""

    inner: anyio.abc.TaskStatus[None]
    started_: bool = False

    def started(self, value: None = None) -> None:
        if not self.started_:
            self.started_ = True
            self.inner.started()


@attrs.define(eq=False)
class _Reactor:
    """The state of one running operator: what a stop needs to reach."""

    registry: OperatorRegistry
    settings: OperatorSettings
    client: ApiClient
    namespaces: NamespaceSelector
    memo: Any
    poster: EventPoster
    hooks: tuple[ObjectHook, ...] = ()
    limiter: anyio.CapacityLimiter | None = None
    background: BackgroundEngine | None = None  # daemons and timers (trikopf/engines)
    on_stopping: Callable[[], None] | None = None  # e.g. /readyz turns unready
    drain_scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    discovery_scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    stopping: bool = False
    _live: dict[int, tuple[anyio.CancelScope, ResourceSupervisor[Any] | RawDispatcher]] = (
        attrs.field(factory=dict)
    )

    def request_stop(self, reason: str) -> None:
        """Begin the graceful stop: no new events; running rounds get the grace period."""
        if self.stopping:
            return
        self.stopping = True
        grace = self.settings.processing.grace_period
        logger.info("Stopping (%s); running rounds have %.1fs to finish.", reason, grace)
        self.discovery_scope.cancel()
        if self.background is not None:
            self.background.shutdown()  # daemons and timers get their own graceful windows
        if self.on_stopping is not None:
            self.on_stopping()
        for watch_scope, supervisor in self._live.values():
            watch_scope.cancel()
            supervisor.stop()
        self.drain_scope.deadline = min(self.drain_scope.deadline, current_time() + grace)

    def object_counts(self) -> tuple[int, int]:
        """How many objects the live watches know, and how many have work ahead of them now.

        An object is busy while it has a round ahead (ready, in its batch window, in a round,
        or waiting for a retry); for resources with only ``on.event`` handlers, the busy
        workers of their pool count instead.
        """
        tracked = busy = 0
        for _, supervisor in self._live.values():
            stats = supervisor.statistics()
            tracked += stats.objects
            busy += stats.active if isinstance(supervisor, ResourceSupervisor) else stats.workers
        return tracked, busy

    def force_stop(self, reason: str) -> None:
        """Stop at once: cancel everything that runs."""
        logger.warning("Stopping at once (%s).", reason)
        self.stopping = True
        self.discovery_scope.cancel()
        self.drain_scope.cancel()

    async def run_discovery(
        self,
        watchers: WatchSet,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        status = _StartedOnce(task_status)
        try:
            with self.discovery_scope:
                await serve_discovery(
                    self.client,
                    self.registry,
                    self.namespaces,
                    watchers,
                    settings=self.settings.watching,
                    task_status=status,
                )
        finally:
            if self.stopping:
                status.started()  # a stop during the start is not a failure to start

    async def serve_key(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        strict: bool = True,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve one (resource, namespace): its watch stream and its objects' workers."""
        status = _StartedOnce(task_status)
        processing = self.settings.processing
        raw = None
        if self.registry.watching_handlers_for(resource):
            # Handlers, memo and settings resolved once: per event only the kwargs are built.
            raw = prepare_raw_handler(
                registry=self.registry,
                settings=self.settings,
                resource=resource,
                client=cast(Any, self.client),
                memo=self.memo,
                poster=self.poster,
            )
        # Coalescing bursts only pays off for rounds that run handlers; raw events need no wait.
        background = bool(
            self.registry.daemon_handlers_for(resource)
            or self.registry.timer_handlers_for(resource)
        )
        needs_rounds = bool(self.registry.changing_handlers_for(resource) or background)
        # Our own PATCH coming back needs no round, unless daemons and timers (their live
        # bodies) or hooks want to see every body.
        settles = None if background or self.hooks else settle_own_echo
        async with anyio.create_task_group() as tg, open_task_spawner(tg) as spawner:
            supervisor: ResourceSupervisor[Any] | RawDispatcher
            if raw is not None and not needs_rounds and not self.hooks:
                # Only on.event handlers: no per-object supervisor, rounds or batch window.
                supervisor = RawDispatcher(
                    tg,
                    raw,
                    max_workers=processing.worker_limit,
                    idle_timeout=processing.idle_timeout,
                    name=where(resource, namespace),
                    backlog_limit=self.settings.watching.backlog_limit,
                )
            else:
                supervisor = ResourceSupervisor(
                    spawner,
                    functools.partial(self._process, resource),
                    ObjectState,
                    raw=raw,
                    limiter=self.limiter,
                    max_workers=processing.worker_limit,
                    idle_timeout=processing.idle_timeout,
                    batch_window=processing.batch_window if needs_rounds else 0.0,
                    name=where(resource, namespace),
                    settles=settles,
                    backlog_limit=processing.backlog_limit,
                    idle_state=ObjectState.is_idle,
                    seen_state=ObjectState.seen_before,
                )
            watch_scope = anyio.CancelScope()
            self._live[id(supervisor)] = (watch_scope, supervisor)
            try:
                if self.stopping:
                    supervisor.stop()
                    watch_scope.cancel()
                with watch_scope:
                    await serve_watch(
                        self.client,
                        resource,
                        namespace,
                        supervisor=supervisor,
                        settings=self.settings.watching,
                        strict=strict,
                        task_status=status,
                    )
                status.started()  # the watch was stopped during its first list: not a failure
            except Exception:
                raise  # a failure to start: reported to the starter as it is
            except BaseException:
                # Cancelled (a stop, or the watch is no longer wanted) during the first list:
                # not a failure to start.
                status.started()
                raise
            finally:
                del self._live[id(supervisor)]

    async def _process(
        self, resource: Resource, event: WatchEvent, state: Any, scope: ObjectScope
    ) -> float | None:
        background = self.background
        if background is not None:
            # A deleted object's daemons stop before the round may release its finalizer.
            await background.before_round(resource=resource, event=event, scope=scope)
        outcome = await process_event(
            registry=self.registry,
            settings=self.settings,
            resource=resource,
            event=event,
            # ApiClient satisfies the PatchClient protocol at runtime; its stricter keyword-only
            # signature is what mypy trips on.
            client=cast(Any, self.client),
            memo=self.memo,
            poster=self.poster,
            state=state,
        )
        if background is not None:
            await background.after_round(resource=resource, event=event, state=state, scope=scope)
        for hook in self.hooks:
            await hook(resource=resource, event=event, state=state, scope=scope)
        return outcome.delay


# How long the last Events may take to be posted when the operator stops.
_FLUSH_TIMEOUT = 2.0


def _client_settings(settings: OperatorSettings) -> ClientSettings:
    networking = settings.networking
    overrides: dict[str, float] = {
        "rate_limit": math.inf if networking.rate_limit is None else networking.rate_limit,
        "rate_burst": networking.rate_burst,
    }
    if networking.request_timeout is not None:
        overrides["request_timeout"] = networking.request_timeout
    if networking.connect_timeout is not None:
        overrides["connect_timeout"] = networking.connect_timeout
    return ClientSettings(**overrides)  # type: ignore[arg-type]


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if inner is None:
        return [exc]
    return [leaf for sub in inner for leaf in _leaves(sub)]


async def _serve_signals(reactor: _Reactor) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            if reactor.stopping:
                reactor.force_stop(f"{name} again")
            else:
                reactor.request_stop(f"{name} received; send it again to stop at once")


async def _serve_stop_flag(reactor: _Reactor, stop_flag: StopFlag) -> None:
    await stop_flag.wait()
    reactor.request_stop("the stop flag is set")


async def operate(
    registry: OperatorRegistry | None = None,
    *,
    settings: OperatorSettings | None = None,
    namespaces: Iterable[str] = (),
    clusterwide: bool = False,
    memo: Any = None,
    connection: ConnectionInfo | None = None,
    stop_flag: StopFlag | None = None,
    ready_flag: ReadyFlag | None = None,
    handle_signals: bool | None = None,
    hooks: Iterable[ObjectHook] = (),
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run an operator for the handlers of ``registry`` until stopped.

    Usable as ``trio.run(trikopf.operate, registry)``, as ``await operate(...)`` in any AnyIO
    application, or as ``await nursery.start(trikopf.operate, ...)``: readiness (through
    ``task_status`` and ``ready_flag``) is reported once every watcher has finished its first
    list. ``namespaces`` are names or globs, ``!pattern`` excludes; none (or ``clusterwide``)
    means the whole cluster. ``connection`` defaults to the kubeconfig or in-cluster account
    found the usual way.

    Starts its whole task tree inside this call and returns only when the tree is gone: after a
    graceful stop (``stop_flag`` set, or SIGINT/SIGTERM when ``handle_signals``) that lets
    running rounds finish within ``settings.processing.grace_period``, or when cancelled (then
    everything stops at once). ``handle_signals`` defaults to true when ``operate`` is not
    started through ``nursery.start`` and runs in the main thread; a second signal stops at once.

    A failure to start (an unreachable cluster, an unknown resource, a bad namespace pattern)
    raises a single exception (:class:`StartupError`, or the client's error), not a group.
    """
    registry = registry if registry is not None else get_default_registry()
    settings = settings if settings is not None else OperatorSettings()
    selector = NamespaceSelector.parse(namespaces, clusterwide=clusterwide)
    memo = memo if memo is not None else Memo()
    # Startup, cleanup, login and probe handlers, daemons and timers, health and metrics.
    services = OperatorServices.prepare(registry, settings, memo)
    credentials = connection if connection is not None else services.credentials()
    if handle_signals is None:
        handle_signals = (
            task_status is anyio.TASK_STATUS_IGNORED
            and threading.current_thread() is threading.main_thread()
        )
    ready = False
    instruments_token = set_instruments(services.metrics)
    try:
        try:
            await services.startup()
        except ActivityError as exc:
            raise StartupError(f"{exc}; the operator does not start") from exc
        set_instruments(services.metrics)  # startup handlers may have enabled the metrics
        if credentials is None:
            credentials = discover()
        client_settings = _client_settings(settings)
        async with open_client(credentials, settings=client_settings) as client:
            poster = EventPoster(client=client, settings=settings.posting)
            reactor = _Reactor(
                registry=registry,
                settings=settings,
                client=client,
                namespaces=selector,
                memo=memo,
                poster=poster,
                hooks=tuple(hooks),
                limiter=(
                    anyio.CapacityLimiter(settings.processing.worker_limit)
                    if settings.processing.worker_limit
                    else None
                ),
                background=services.background(cast(Any, client), poster),
                on_stopping=functools.partial(services.set_ready, False),
            )
            services.track_objects(reactor.object_counts)
            # trikopf.info & co. find the poster through a context variable that tasks inherit.
            poster_token = set_current_poster(poster)
            try:
                logger.info("Starting the operator (%s).", selector)
                async with anyio.create_task_group() as root:
                    if handle_signals:
                        root.start_soon(_serve_signals, reactor)
                    if stop_flag is not None:
                        root.start_soon(_serve_stop_flag, reactor, stop_flag)
                    if settings.background.memory_release_interval is not None:
                        interval = settings.background.memory_release_interval
                        root.start_soon(functools.partial(serve_memory_release, interval=interval))
                    await root.start(poster.run)
                    if services.serving:
                        await root.start(services.serve)
                    with reactor.drain_scope:
                        async with anyio.create_task_group() as watchers_group:
                            watchers = WatchSet(watchers_group, reactor.serve_key)
                            await watchers_group.start(reactor.run_discovery, watchers)
                            ready = True
                            services.set_ready(True)
                            logger.info("The operator is ready: %d watches.", len(watchers.keys))
                            task_status.started()
                            if ready_flag is not None:
                                ready_flag.set()
                    services.set_ready(False)
                    if reactor.drain_scope.cancelled_caught:
                        logger.warning(
                            "The grace period ended; the remaining rounds were cancelled."
                        )
                    await services.cleanup()  # shielded and bounded
                    # The last rounds' Events go out before the client closes, within a bound.
                    with anyio.move_on_after(_FLUSH_TIMEOUT, shield=True):
                        await poster.flush()
                    root.cancel_scope.cancel()
            finally:
                await services.cleanup()  # after a cancellation too; it runs once
                poster_token.var.reset(poster_token)
            logger.info("The operator has stopped.")
    except Exception as exc:
        leaves = _leaves(exc)
        if not ready and len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise
    finally:
        instruments_token.var.reset(instruments_token)


def run(
    registry: OperatorRegistry | None = None,
    *,
    backend: str = "trio",
    **kwargs: Any,
) -> None:
    """Run :func:`operate` in a new event loop (Trio by default) and return when it stops.

    Blocks the calling thread; SIGINT/SIGTERM stop the operator gracefully (when called from
    the main thread), a second signal stops it at once.
    """
    anyio.run(functools.partial(operate, registry, **kwargs), backend=backend)
