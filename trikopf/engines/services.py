"""What :func:`trikopf.operate` runs around its watchers, gathered behind one small interface.

:class:`OperatorServices` holds, for one operator: the activities (startup, cleanup, login,
probes), the background engine (daemons and timers), the metrics and the HTTP endpoints. The
reactor calls it at fixed points of its life::

    services = OperatorServices.prepare(registry, settings, memo)   # checks settings; no I/O
    await services.startup()                  # before any watching; ActivityError on failure
    open_client(services.credentials() or ...)
    engine = services.background(client, poster)
    await root.start(services.serve)          # when liveness or metrics are configured
    services.set_ready(True)                  # once every watcher has listed
    ...
    await services.cleanup()                  # at exit, shielded and bounded
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import attrs

from trikopf.actions.patching import PatchClient
from trikopf.actions.posting import EventPoster
from trikopf.engines.activities import LoginSource, ProbeRunner, run_cleanup, run_startup
from trikopf.engines.background import BackgroundEngine
from trikopf.engines.metrics import OperatorMetrics
from trikopf.engines.serving import Endpoints, plan_listeners, serve_endpoints
from trikopf.registry import Activity, OperatorRegistry
from trikopf.settings import OperatorSettings

__all__ = ["OperatorServices"]


@attrs.define(eq=False)
class OperatorServices:
    """The operator-level parts of one operator (see the module docs). Owns no task itself."""

    registry: OperatorRegistry
    settings: OperatorSettings
    memo: Any
    metrics: OperatorMetrics | None = None
    endpoints: Endpoints | None = None
    listeners: list[tuple[str, int]] = attrs.field(factory=list)
    engine: BackgroundEngine | None = None
    _cleaned: bool = attrs.field(default=False, init=False)

    @classmethod
    def prepare(
        cls, registry: OperatorRegistry, settings: OperatorSettings, memo: Any
    ) -> OperatorServices:
        """Check the serving settings and build the metrics; raises ``ValueError`` if bad."""
        services = cls(registry=registry, settings=settings, memo=memo)
        services._configure()
        return services

    def _configure(self) -> None:
        serving = self.settings.serving
        if not serving.metrics:
            self.metrics = None
        elif self.metrics is None:
            self.metrics = OperatorMetrics()
        self.endpoints = None
        self.listeners = []
        if serving.liveness or serving.metrics:
            probes = (
                ProbeRunner(self.registry, self.settings, self.memo) if serving.liveness else None
            )
            self.endpoints = Endpoints(probes=probes, metrics=self.metrics)
            self.listeners = plan_listeners(serving, self.endpoints)

    async def startup(self) -> None:
        """Run the startup handlers; then take the settings they may have changed into account."""
        await run_startup(self.registry, settings=self.settings, memo=self.memo)
        self._configure()

    def credentials(self) -> LoginSource | None:
        """A credentials source from the login handlers, or ``None`` when there are none."""
        if not self.registry.activity_handlers(Activity.AUTHENTICATION):
            return None
        return LoginSource(self.registry, self.settings, self.memo)

    def background(
        self, client: PatchClient, poster: EventPoster | None
    ) -> BackgroundEngine | None:
        """The daemon and timer engine, or ``None`` when the registry has neither."""
        if not self.registry.daemon_handlers and not self.registry.timer_handlers:
            return None
        self.engine = BackgroundEngine(
            registry=self.registry,
            settings=self.settings,
            client=client,
            memo=self.memo,
            poster=poster,
        )
        if self.metrics is not None:
            engine = self.engine

            def running() -> tuple[int, int]:
                stats = engine.statistics()
                return stats.daemons, stats.timers

            self.metrics.sources.background = running
        return self.engine

    def track_objects(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Where the objects gauges come from: ``counts()`` returns ``(tracked, busy)``."""
        if self.metrics is not None:
            self.metrics.sources.objects = counts

    @property
    def serving(self) -> bool:
        """Whether there are endpoints to serve."""
        return self.endpoints is not None and bool(self.listeners)

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve the endpoints until cancelled (reports started once they listen)."""
        assert self.endpoints is not None
        await serve_endpoints(self.endpoints, self.listeners, task_status=task_status)

    def set_ready(self, ready: bool) -> None:
        """What ``/readyz`` says from now on."""
        if self.endpoints is not None:
            self.endpoints.ready = ready

    async def cleanup(self) -> None:
        """Run the cleanup handlers once (shielded, bounded; never raises)."""
        if self._cleaned:
            return
        self._cleaned = True
        await run_cleanup(self.registry, settings=self.settings, memo=self.memo)
