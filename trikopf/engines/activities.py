"""Operator-level handlers: startup, cleanup, login (credentials) and probes (health).

- :func:`run_startup` runs every ``on.startup`` handler in order, before any watcher starts; a
  handler that fails for good raises :class:`ActivityError` (the operator does not start).
- :func:`run_cleanup` runs every ``on.cleanup`` handler at exit, bounded in time.
- :class:`LoginSource` is a credentials source for the client: it asks the ``on.login``
  handlers for a :class:`~trikopf.client.ConnectionInfo` at start and again after a 401.
- :class:`ProbeRunner` calls the ``on.probe`` handlers for the liveness endpoint and caches
  their results for ``settings.serving.probe_cache`` seconds.

Activity handlers receive ``settings``, ``memo``, ``logger``, ``param``, ``activity``,
``retry``, ``started`` and ``runtime`` (and login handlers ``previous``, the credentials that
just failed, or ``None``). Unlike object handlers, an arbitrary exception from a startup or
cleanup handler is permanent unless the handler says ``errors=`` otherwise; raise
:class:`~trikopf.TemporaryError` to be retried.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

import anyio
import attrs

from trikopf.actions.execution import Defaults, Outcome, execute_handler
from trikopf.actions.invocation import invoke
from trikopf.actions.progress import HandlerState, wall_now
from trikopf.client import ConnectionInfo
from trikopf.client.errors import ConfigError
from trikopf.errors import ErrorsMode, TemporaryError
from trikopf.registry import Activity, ActivityHandler, OperatorRegistry
from trikopf.settings import OperatorSettings

__all__ = ["ActivityError", "LoginSource", "ProbeRunner", "run_cleanup", "run_startup"]

logger = logging.getLogger("trikopf.activities")
_adapter = logging.LoggerAdapter(logger, {})


class ActivityError(Exception):
    """An operator-level handler failed for good; the message says which and why."""


def _defaults(settings: OperatorSettings) -> Defaults:
    execution = settings.execution
    return Defaults(
        errors=ErrorsMode.PERMANENT,
        backoff=execution.backoff,
        timeout=execution.timeout,
        retries=execution.retries,
        thread_limit=execution.max_sync_threads,
    )


def _kwargs(
    handler: ActivityHandler,
    *,
    settings: OperatorSettings,
    memo: Any,
    retry: int,
    started: float,
    now: float,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "settings": settings,
        "memo": memo,
        "logger": _adapter,
        "param": handler.param,
        "activity": handler.activity.value,
        "retry": retry,
        "started": datetime.datetime.fromtimestamp(started, tz=datetime.timezone.utc),
        "runtime": datetime.timedelta(seconds=max(0.0, now - started)),
        **extra,
    }


async def _run_until_done(
    handler: ActivityHandler, *, settings: OperatorSettings, memo: Any
) -> Outcome:
    """Call the handler until it succeeds or fails for good (retries sleep in this task)."""
    defaults = _defaults(settings)
    state = HandlerState(started=wall_now())
    while True:
        now = wall_now()
        kwargs = _kwargs(
            handler,
            settings=settings,
            memo=memo,
            retry=state.retries,
            started=state.started,
            now=now,
        )
        outcome = await execute_handler(
            handler, state, kwargs, now=now, defaults=defaults, logger=_adapter
        )
        if outcome.state.done or outcome.state.failed:
            return outcome
        state = attrs.evolve(outcome.state, delayed=None)
        await anyio.sleep(outcome.delay or 0.0)


async def run_startup(registry: OperatorRegistry, *, settings: OperatorSettings, memo: Any) -> None:
    """Run the startup handlers one after another in the caller's task.

    Returns when all have succeeded; they may change ``settings`` and fill ``memo`` for the
    rest of the operator. Raises :class:`ActivityError` at the first one that fails for good.
    Cancelling the caller cancels the running handler.
    """
    for handler in registry.activity_handlers(Activity.STARTUP):
        outcome = await _run_until_done(handler, settings=settings, memo=memo)
        if outcome.state.failed:
            raise ActivityError(
                f"the startup handler {handler.id!r} failed: "
                f"{outcome.state.message or outcome.exception}"
            )


async def run_cleanup(registry: OperatorRegistry, *, settings: OperatorSettings, memo: Any) -> None:
    """Run the cleanup handlers one after another; never raises, never hangs the exit.

    Shielded from the cancellation of the caller (the operator is stopping anyway) and bounded
    by ``settings.background.cleanup_timeout`` for all of them together; a handler still
    running then is cancelled and reported. Failures are logged.
    """
    handlers = registry.activity_handlers(Activity.CLEANUP)
    if not handlers:
        return
    limit = settings.background.cleanup_timeout
    with anyio.CancelScope(shield=True), anyio.move_on_after(limit) as bounded:
        for handler in handlers:
            try:
                outcome = await _run_until_done(handler, settings=settings, memo=memo)
            except Exception:  # never raised by execute_handler; kept as a last guard
                logger.exception("The cleanup handler %r failed.", handler.id)
                continue
            if outcome.state.failed:
                logger.error("The cleanup handler %r failed: %s", handler.id, outcome.state.message)
    if bounded.cancelled_caught:
        logger.warning(
            "The cleanup handlers did not finish within %gs; they were cancelled.", limit
        )


@attrs.define(eq=False)
class LoginSource:
    """A credentials source built from the ``on.login`` handlers (for :func:`open_client`).

    Called in the client's task at start (``previous=None``) and after a 401 with the
    credentials that failed. Asks the handlers in order; the first that returns a
    :class:`ConnectionInfo` wins. A ``TemporaryError`` is retried after its delay (up to the
    handler's ``retries``); anything else, or no handler returning credentials, raises
    :class:`ConfigError` with the reason.
    """

    registry: OperatorRegistry
    settings: OperatorSettings
    memo: Any

    async def __call__(self, *, previous: ConnectionInfo | None) -> ConnectionInfo:
        handlers = self.registry.activity_handlers(Activity.AUTHENTICATION)
        problems: list[str] = []
        for handler in handlers:
            try:
                found = await self._ask(handler, previous)
            except ConfigError as exc:
                problems.append(str(exc))
                continue
            if found is not None:
                logger.info("Logged in with the credentials of %r.", handler.id)
                return found
        why = "; ".join(problems) if problems else "none of them returned a ConnectionInfo"
        raise ConfigError(f"the login handlers gave no credentials: {why}")

    async def _ask(
        self, handler: ActivityHandler, previous: ConnectionInfo | None
    ) -> ConnectionInfo | None:
        started = wall_now()
        retry = 0
        limit = handler.retries if handler.retries is not None else self.settings.execution.retries
        while True:
            now = wall_now()
            kwargs = _kwargs(
                handler,
                settings=self.settings,
                memo=self.memo,
                retry=retry,
                started=started,
                now=now,
                previous=previous,
            )
            try:
                result = await invoke(
                    handler.fn, kwargs, thread_limit=self.settings.execution.max_sync_threads
                )
            except TemporaryError as exc:
                retry += 1
                if limit is not None and retry >= limit:
                    raise ConfigError(f"{handler.id!r} failed {retry} times: {exc}") from exc
                delay = exc.delay if exc.delay is not None else self.settings.execution.backoff
                logger.warning(
                    "The login handler %r failed: %s; retrying in %gs.", handler.id, exc, delay
                )
                await anyio.sleep(delay)
                continue
            except Exception as exc:
                raise ConfigError(f"{handler.id!r} failed: {type(exc).__name__}: {exc}") from exc
            if result is None or isinstance(result, ConnectionInfo):
                return result
            raise ConfigError(
                f"{handler.id!r} returned {type(result).__name__}; a login handler returns a "
                "trikopf.client.ConnectionInfo or None"
            )


@attrs.frozen(kw_only=True)
class ProbeReport:
    """The probes' results at one moment: ``healthy`` unless a probe failed."""

    healthy: bool
    results: Mapping[str, Any]
    taken: float


@attrs.define(eq=False)
class ProbeRunner:
    """Runs the ``on.probe`` handlers for health checks, reusing results for a while.

    :meth:`check` runs them (one at a time, in the caller's task) at most once per
    ``settings.serving.probe_cache`` seconds; concurrent checks share one run. A probe that
    raises makes the report unhealthy, with the error as its result.
    """

    registry: OperatorRegistry
    settings: OperatorSettings
    memo: Any
    _last: ProbeReport | None = attrs.field(default=None, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)

    async def check(self) -> ProbeReport:
        """The current report: cached if fresh enough, else from a new run of the probes."""
        async with self._lock:
            now = anyio.current_time()
            last = self._last
            if last is not None and now - last.taken < self.settings.serving.probe_cache:
                return last
            self._last = await self._run()
            return self._last

    async def _run(self) -> ProbeReport:
        results: dict[str, Any] = {}
        healthy = True
        started = wall_now()
        for handler in self.registry.activity_handlers(Activity.PROBE):
            kwargs = _kwargs(
                handler,
                settings=self.settings,
                memo=self.memo,
                retry=0,
                started=started,
                now=wall_now(),
            )
            timeout = handler.timeout if handler.timeout is not None else 30.0
            try:
                with anyio.fail_after(timeout):
                    results[handler.id] = await invoke(
                        handler.fn, kwargs, thread_limit=self.settings.execution.max_sync_threads
                    )
            except TimeoutError:
                healthy = False
                results[handler.id] = {"error": f"no answer within {timeout:g}s"}
            except Exception as exc:
                healthy = False
                results[handler.id] = {"error": f"{type(exc).__name__}: {exc}"}
                logger.warning("The probe %r failed: %s", handler.id, exc)
        return ProbeReport(healthy=healthy, results=results, taken=anyio.current_time())
