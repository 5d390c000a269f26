"""The body of a daemon task: delay, call, restart after crashes, never after a normal return."""

from __future__ import annotations

import attrs

from trikopf.actions.execution import execute_handler
from trikopf.actions.progress import HandlerState, wall_now
from trikopf.engines.background import BackgroundEngine, BackgroundHandler, BackgroundTask
from trikopf.engines.stopping import AsyncDaemonStopped, DaemonStopped, SyncDaemonStopped
from trikopf.errors import TemporaryError
from trikopf.registry import DaemonHandler

__all__ = ["run_daemon", "stop_flag_for"]

# Sync daemons hold their thread for their whole life: they get a limiter of their own, so that
# they never take the threads of short sync handlers (whose limit is settings.execution's).
_DAEMON_THREADS = 1_000_003


def stop_flag_for(engine: BackgroundEngine, handler: BackgroundHandler) -> DaemonStopped:
    """The ``stopped`` flag for this handler: waitable in a thread for sync ones."""
    return SyncDaemonStopped() if engine.is_sync(handler) else AsyncDaemonStopped()


async def run_daemon(task: BackgroundTask) -> None:
    """Run one daemon of one object until it returns, fails for good, or is asked to stop.

    Runs as the task itself, inside ``with task:`` (the task's cancel scope, and its end reported).
    Waits ``initial_delay`` first (ended early by a stop). A daemon that returns is done: its
    result goes to ``status.<id>`` and it is not started again for this object while the object
    matches. A crash restarts it after its ``backoff`` (doubled with each crash in a row, up to
    ``settings.background.restart_backoff_max``) or the delay of a ``TemporaryError``; a
    ``PermanentError``, used-up ``retries`` or a passed ``timeout`` end it for good.
    """
    with task:  # its cancel scope, and the report of its end (the task's first step)
        handler = task.handler
        assert isinstance(handler, DaemonHandler)
        engine = task.engine
        stopped = task.stopped
        if handler.initial_delay and await stopped.wait_async(handler.initial_delay):
            return
        defaults = engine.shared_defaults(thread_limit=_DAEMON_THREADS)
        state = HandlerState(started=wall_now())
        crashes = 0
        while True:
            now = wall_now()
            kwargs, patch = task.kwargs(retry=state.retries, started=state.started, now=now)
            logger = kwargs["logger"]  # the handler's own: one logger per call
            outcome = await execute_handler(
                handler, state, kwargs, now=now, defaults=defaults, logger=logger
            )
            if stopped:
                return  # it ended because it was asked to: nothing to restart or report
            result_state: HandlerState = outcome.state
            if result_state.done or result_state.failed:
                await task.send(outcome.result, patch)
                obj = task.obj
                if obj.finished is None:
                    obj.finished = set()
                obj.finished.add(handler.id)
                if result_state.done and outcome.exception is None:
                    task.logger.info(
                        "Daemon %r has returned; it is not restarted for this object.", handler.id
                    )
                return
            await task.send(None, patch)
            delay = outcome.delay if outcome.delay is not None else defaults.backoff
            if not isinstance(outcome.exception, TemporaryError):
                crashes += 1
                delay = min(
                    delay * 2 ** (crashes - 1), engine.settings.background.restart_backoff_max
                )
            task.logger.info("Daemon %r will be restarted in %gs.", handler.id, delay)
            state = attrs.evolve(result_state, delayed=None)
            if await stopped.wait_async(delay):
                return
