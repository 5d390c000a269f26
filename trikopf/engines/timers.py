"""The body of a timer task: ticks by ``interval`` (or on a fixed grid), ``idle`` and retries."""

from __future__ import annotations

import math

import anyio

from trikopf.actions.execution import execute_handler
from trikopf.actions.progress import HandlerState, wall_now
from trikopf.engines.background import BackgroundTask
from trikopf.registry import TimerHandler

__all__ = ["next_tick", "run_timer"]


def next_tick(*, anchor: float, interval: float, now: float) -> float:
    """The first moment of the grid ``anchor + k * interval`` that lies after ``now``."""
    k = math.floor((now - anchor) / interval) + 1
    return anchor + max(k, 1) * interval


async def run_timer(task: BackgroundTask) -> None:
    """Call one timer of one object every ``interval`` seconds until it is asked to stop.

    Runs as the task itself, inside ``with task:``. Waits ``initial_delay`` first.
    With ``idle``, a call happens only once the object's essence (spec, labels, user
    annotations; not status) has not changed for that long. Without ``sharp`` the interval
    counts from the end of the previous call; with it, calls keep to the grid that starts when
    the timer starts, skipping the ticks that a long call overran. A failed call is retried after
    its backoff (``retries``/``timeout``/``errors`` as for other handlers); a call that fails for
    good waits for the next tick and starts afresh. Results go to ``status.<id>``.
    """
    with task:  # its cancel scope, and the report of its end (the task's first step)
        handler = task.handler
        assert isinstance(handler, TimerHandler)
        engine = task.engine
        stopped = task.stopped
        if handler.initial_delay and await stopped.wait_async(handler.initial_delay):
            return
        anchor = anyio.current_time()
        state: HandlerState | None = None
        while True:
            if handler.idle is not None:
                quiet = engine.idle_for(task)
                if quiet < handler.idle:
                    if await stopped.wait_async(handler.idle - quiet):
                        return
                    continue  # a change may have come meanwhile: look again
            now = wall_now()
            if state is None:
                state = HandlerState(started=now)
            kwargs, patch = task.kwargs(retry=state.retries, started=state.started, now=now)
            logger = kwargs["logger"]  # the handler's own: one logger per call
            outcome = await execute_handler(
                handler, state, kwargs, now=now, defaults=engine.defaults, logger=logger
            )
            if stopped:
                return
            await task.send(outcome.result, patch)
            if outcome.delay is not None:
                state = outcome.state
                delay = outcome.delay
            else:
                state = None
                if handler.sharp:
                    current = anyio.current_time()
                    delay = (
                        next_tick(anchor=anchor, interval=handler.interval, now=current) - current
                    )
                else:
                    delay = handler.interval
            if await stopped.wait_async(delay):
                return
