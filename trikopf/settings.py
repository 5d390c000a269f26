"""Operator settings: nested attrs groups with documented defaults.

One :class:`OperatorSettings` object is passed to :func:`trikopf.operate` (or built by the CLI).
Each concern has its own group, so a setting is reached as ``settings.watching.server_timeout``.
The groups are mutable on purpose: startup handlers may adjust them before the watchers start,
as Kopf users are used to. Once the operator runs, the settings are read but never written by the
framework.

Example::

    settings = trikopf.OperatorSettings()
    settings.processing.worker_limit = 50
    settings.watching.server_timeout = 120
    trio.run(functools.partial(trikopf.operate, registry, settings=settings))
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

__all__ = [
    "BackgroundSettings",
    "ExecutionSettings",
    "NetworkingSettings",
    "OperatorSettings",
    "PeeringSettings",
    "PersistenceSettings",
    "PostingSettings",
    "ProcessingSettings",
    "ServingSettings",
    "WatchingSettings",
]


def _positive_or_none(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(
            f"settings: {attribute.name} must be a positive number or None, got {value!r}"
        )


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"settings: {attribute.name} must be a positive number, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"settings: {attribute.name} must be zero or positive, got {value!r}")


@attrs.define(kw_only=True)
class WatchingSettings:
    """How the watchers list and watch each (resource, namespace).

    - ``server_timeout``: ``timeoutSeconds`` asked of the API server for one watch request; the
      server ends the stream after it and the watcher continues from the last resourceVersion.
    - ``client_timeout``: a hard limit for one watch request on our side (``None``: no limit
      beyond ``server_timeout``); time spent waiting for a congested backlog is not counted.
    - ``inactivity_timeout``: a stream that brings neither events nor bookmarks for this long
      is considered stuck and is reopened (``None``: never).
    - ``reconnect_backoff`` / ``reconnect_backoff_max``: the first delay after a failed
      list/watch, doubled on each consecutive failure up to the maximum. Reset by a successful
      list.
    - ``allow_bookmarks``: ask the server for BOOKMARK events, so that a reconnect after a quiet
      period does not need a relist.
    - ``list_page_size``: page size (``limit``) of the initial list (``None``: one page).
    - ``discovery_interval``: how often the set of served resources (CRDs) is re-checked as a
      safety net in addition to watching CRDs (seconds).
    - ``wait_for_resources``: a handler's resource that the cluster does not serve at start is
      a startup error by default (a typo fails fast); with ``True`` the operator starts anyway
      and watches the resource once its CRD appears.
    - ``backlog_limit``: backpressure. A watcher stops reading from its stream while this many
      received events of its resource wait for their ``on.event`` handlers, and goes on when
      half of them are handled, so a burst that the handlers cannot keep up with waits in the
      connection instead of in the operator's memory (``None``: never stop reading).
    """

    server_timeout: float | None = attrs.field(default=300.0, validator=_positive_or_none)
    client_timeout: float | None = attrs.field(default=None, validator=_positive_or_none)
    inactivity_timeout: float | None = attrs.field(default=600.0, validator=_positive_or_none)
    reconnect_backoff: float = attrs.field(default=0.1, validator=_positive)
    reconnect_backoff_max: float = attrs.field(default=30.0, validator=_positive)
    allow_bookmarks: bool = True
    list_page_size: int | None = attrs.field(default=None, validator=_positive_or_none)
    discovery_interval: float = attrs.field(default=60.0, validator=_positive)
    wait_for_resources: bool = False
    backlog_limit: int | None = attrs.field(default=10_000, validator=_positive_or_none)


@attrs.define(kw_only=True)
class ProcessingSettings:
    """How events become processing rounds (the queueing between the watcher and handlers).

    - ``worker_limit``: how many objects may run a processing round at the same time
      (``None``: no limit). Rounds of one object never overlap regardless of this.
    - ``idle_timeout``: a round worker of a (resource, namespace) pool with no object to serve
      for this long exits; the pool grows again when rounds wait (seconds). Objects themselves
      hold no task between rounds.
    - ``batch_window``: after an event arrives, wait this long for more events of the same
      object and process only the newest body (coalescing of bursts; seconds, 0 disables).
    - ``grace_period``: on stop, running rounds get this long to finish before they are
      cancelled (seconds).
    - ``backlog_limit``: backpressure. While this many events of one watch are held by the
      operator (waiting for their round in the batch window or for a ``worker_limit`` slot, or
      in a round that has not ended: its handlers, its PATCH), the watcher stops reading from
      its stream; it reads on once half of them are done (``None``: no limit). Events queue in
      the API server meanwhile, not in the operator's memory.
    """

    worker_limit: int | None = attrs.field(default=None, validator=_positive_or_none)
    idle_timeout: float = attrs.field(default=5.0, validator=_positive)
    batch_window: float = attrs.field(default=0.1, validator=_non_negative)
    grace_period: float = attrs.field(default=10.0, validator=_non_negative)
    # 1,000, not 10,000, counted until each round ends: a burst of creations then parses and
    # holds fewer events, requests and responses at a time (docs/settings.md).
    backlog_limit: int | None = attrs.field(default=1_000, validator=_positive_or_none)

    @property
    def exit_timeout(self) -> float:
        """Kopf's name (``settings.batching.exit_timeout``) of :attr:`grace_period`."""
        return self.grace_period

    @exit_timeout.setter
    def exit_timeout(self, value: float) -> None:
        self.grace_period = value


@attrs.define(kw_only=True)
class PostingSettings:
    """Posting of handler outcomes and ``trikopf.info``/``warn``/``exception`` as k8s Events.

    - ``enabled``: post Kubernetes Events at all.
    - ``level``: the lowest log level that becomes an Event (``logging.INFO`` by default).
    - ``batch_window``: events are collected for this long and then posted together, off the
      hot path (seconds).
    - ``rate_limit``: at most this many Events per second are posted; the rest are dropped with
      a log line, never queued without bound.
    - ``queue_size``: events waiting to be posted; beyond it new ones are dropped and logged.
    """

    enabled: bool = True
    level: int = logging.INFO
    batch_window: float = attrs.field(default=0.5, validator=_non_negative)
    rate_limit: float = attrs.field(default=50.0, validator=_positive)
    queue_size: int = attrs.field(default=1000, validator=_positive)


@attrs.define(kw_only=True)
class NetworkingSettings:
    """The HTTP client's timeouts and limits (mapped onto the client's own settings).

    - ``connect_timeout``: opening a connection to the API server (seconds).
    - ``request_timeout``: one non-watch request, start to end (seconds).
    - ``rate_limit``: requests per second to the API server on average (``None``: no limit,
      as in Kopf; the server's own priority and fairness protect it). A limit also caps how
      many objects per second the operator can handle, since every round sends a PATCH.
    - ``rate_burst``: how many requests may go at once above ``rate_limit``.
    - ``max_concurrent_writes``: how many processing rounds may send their PATCH at the same
      time; the others wait their turn. Thousands of requests queued inside the HTTP pool cost
      far more CPU (connections opened and closed, the pool scanned per request) than a short
      wait here. The client keeps up to its ``max_connections`` (100 by default) connections
      alive, which other requests (reads, Events, leases) share with these writes; a value
      above ``max_connections`` only moves the queue into the connection pool. A round that
      waits here holds no connection.
    """

    connect_timeout: float | None = attrs.field(default=10.0, validator=_positive_or_none)
    request_timeout: float | None = attrs.field(default=60.0, validator=_positive_or_none)
    rate_limit: float | None = attrs.field(default=None, validator=_positive_or_none)
    rate_burst: int = attrs.field(default=100, validator=_positive)
    max_concurrent_writes: int = attrs.field(default=20, validator=_positive)


@attrs.define(kw_only=True)
class PersistenceSettings:
    """Where the operator keeps its memory on the objects it handles.

    - ``finalizer``: the finalizer added when delete handlers need one.
    - ``annotation_prefix``: the prefix of the annotations that store the last handled essence
      and the progress of retries.
    - ``essence_limit``: the longest essence (JSON characters) stored as is; a longer one is
      stored as a digest (changes are still detected, but updates get no detailed diff).
    """

    finalizer: str = "trikopf.dev/finalizer"
    annotation_prefix: str = "trikopf.dev"
    essence_limit: int = attrs.field(default=100_000, validator=_positive)


@attrs.define(kw_only=True)
class ExecutionSettings:
    """How handlers are run.

    - ``max_sync_threads``: how many synchronous handlers may run at once in worker threads
      (async handlers run in the operator's tasks and are not limited by it).
    - ``backoff``: seconds before a failed handler is retried, unless it says otherwise
      (``TemporaryError(delay=)`` or its own ``backoff=``).
    - ``timeout`` / ``retries``: the defaults for handlers that give none (``None``: no limit).
    """

    max_sync_threads: int = attrs.field(default=10, validator=_positive)
    backoff: float = attrs.field(default=60.0, validator=_non_negative)
    timeout: float | None = attrs.field(default=None, validator=_positive_or_none)
    retries: int | None = attrs.field(default=None, validator=_positive_or_none)

    @property
    def max_workers(self) -> int:
        """Kopf's name (``settings.execution.max_workers``) of :attr:`max_sync_threads`."""
        return self.max_sync_threads

    @max_workers.setter
    def max_workers(self, value: int) -> None:
        self.max_sync_threads = value

    @property
    def default_backoff(self) -> float:
        """Kopf's name (``settings.execution.default_backoff``) of :attr:`backoff`."""
        return self.backoff

    @default_backoff.setter
    def default_backoff(self, value: float) -> None:
        self.backoff = value


@attrs.define(kw_only=True)
class BackgroundSettings:
    """Daemons, timers and the operator-level activities (startup, cleanup).

    - ``cancellation_timeout``: how long a daemon that names no ``cancellation_timeout`` of its
      own has to return after its ``stopped`` flag is set; then an async daemon is cancelled and
      a sync one is abandoned to its thread (seconds).
    - ``restart_backoff_max``: the longest delay before a crashed daemon is restarted (the
      delay starts at the daemon's ``backoff`` and doubles with each crash in a row; seconds).
    - ``cleanup_timeout``: the cleanup handlers together get this long when the operator exits.
    - ``memory_release_interval``: how often the operator looks whether a burst of work (many
      objects handled at once) has ended; when one has, it runs a full garbage collection and,
      on glibc, ``malloc_trim``, to give the burst's freed memory back to the system (seconds;
      ``None``: never).
    """

    cancellation_timeout: float = attrs.field(default=5.0, validator=_non_negative)
    restart_backoff_max: float = attrs.field(default=300.0, validator=_positive)
    cleanup_timeout: float = attrs.field(default=10.0, validator=_positive)
    memory_release_interval: float | None = attrs.field(default=2.0, validator=_positive_or_none)


@attrs.define(kw_only=True)
class ServingSettings:
    """The operator's own HTTP endpoints: liveness, readiness and Prometheus metrics.

    - ``liveness``: ``http://HOST:PORT/PATH`` where the liveness endpoint answers (``/readyz``
      answers on the same host and port); ``None``: not served.
    - ``metrics``: ``http://HOST:PORT/PATH`` of the Prometheus endpoint; ``None``: no metrics
      are collected at all. The same host and port as ``liveness`` share one listener.
    - ``probe_cache``: the results of ``on.probe`` handlers are reused for this long, so a
      busy prober does not run them on every request (seconds).
    """

    liveness: str | None = None
    metrics: str | None = None
    probe_cache: float = attrs.field(default=10.0, validator=_non_negative)


@attrs.define(kw_only=True)
class OperatorSettings:
    """All settings of one operator, grouped by concern; every group has defaults.

    A plain value object: building it starts nothing. It is read by :func:`trikopf.operate` when
    the operator starts and by the parts of the operator as they run.
    """

    watching: WatchingSettings = attrs.field(factory=WatchingSettings)
    processing: ProcessingSettings = attrs.field(factory=ProcessingSettings)
    posting: PostingSettings = attrs.field(factory=PostingSettings)
    networking: NetworkingSettings = attrs.field(factory=NetworkingSettings)
    persistence: PersistenceSettings = attrs.field(factory=PersistenceSettings)
    execution: ExecutionSettings = attrs.field(factory=ExecutionSettings)
    background: BackgroundSettings = attrs.field(factory=BackgroundSettings)
    serving: ServingSettings = attrs.field(factory=ServingSettings)
    peering: PeeringSettings = attrs.field(factory=lambda: PeeringSettings())

    @property
    def batching(self) -> ProcessingSettings:
        """Kopf's name of :attr:`processing` (``worker_limit``, ``idle_timeout``, ...)."""
        return self.processing

    @property
    def queueing(self) -> ProcessingSettings:
        """Kopf's newer name of :attr:`processing` (``worker_limit``, ``idle_timeout``, ...)."""
        return self.processing


def _only_standalone(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not True:
        raise ValueError(
            "settings: peering is not there yet; the operator always runs standalone "
            f"(peering.standalone must stay True, got {value!r})"
        )


@attrs.define(kw_only=True)
class PeeringSettings:
    """Kopf's peering group, as far as it holds today: the operator always runs standalone.

    - ``standalone``: ``True``, the only accepted value (Kopf users often set it in a startup
      handler; ``False`` is refused until peering and leader election exist).
    """

    standalone: bool = attrs.field(default=True, validator=_only_standalone)
