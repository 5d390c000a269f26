"""Running the due handlers of one cause: timeouts, retries, backoff, and what each outcome means.

:func:`execute_handler` calls one handler once and turns whatever happened into a new
:class:`~trikopf.actions.progress.HandlerState` plus an :class:`Outcome`. Handler errors stop
here: they become a retry with a delay, a permanent failure, or (``errors=IGNORED``) a done
handler. Only cancellation from outside (the operator stopping) passes through.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Coroutine, Mapping
from typing import Any

import anyio
import attrs

from trikopf._util.instruments import current_instruments
from trikopf.actions.invocation import (
    begin_call,
    end_call,
    invoke,
    raise_if_asyncio_under_trio,
    signature_of,
)
from trikopf.errors import (
    ErrorsMode,
    HandlerResultError,
    HandlerRetriesError,
    HandlerTimeoutError,
    PermanentError,
    TemporaryError,
)
from trikopf.registry import BaseHandler

__all__ = ["Defaults", "Outcome", "check_result", "execute_handler"]


@attrs.frozen(kw_only=True)
class Defaults:
    """The operator-wide defaults for handler options left as ``None``."""

    errors: ErrorsMode = ErrorsMode.TEMPORARY
    backoff: float = 60.0
    timeout: float | None = None
    retries: int | None = None
    thread_limit: int = 10


@attrs.frozen(kw_only=True)
class Outcome:
    """What one call of one handler came to."""

    state: Any  # HandlerState (kept loose to avoid a cycle in type-only imports)
    result: Any = None
    exception: BaseException | None = None
    delay: float | None = None  # when it will be retried, seconds from now

    @property
    def succeeded(self) -> bool:
        return self.state.done and self.exception is None


def check_result(handler_id: str, result: Any) -> Any:
    """Return ``result`` if it can be stored as JSON in status; raise a clear error if not."""
    if result is None or _plain_json(result, 0):
        return result
    try:
        json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise HandlerResultError(
            f"Handler {handler_id!r} returned {type(result).__name__} {_short(result)}, "
            f"which cannot be stored in status.{handler_id} ({exc}); return JSON-like data "
            "(dict, list, str, int, float, bool) or None"
        ) from None
    return result


def _plain_json(value: Any, depth: int) -> bool:
    """Whether ``value`` is made of JSON's own types only (a fast yes; ``False``: look closer)."""
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if depth > 32:
        return False
    if kind is dict:
        return all(type(k) is str and _plain_json(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_plain_json(v, depth + 1) for v in value)
    return False


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def execute_handler(
    handler: BaseHandler,
    state: Any,
    kwargs: Mapping[str, Any],
    *,
    now: float,
    defaults: Defaults,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
) -> Coroutine[Any, Any, Outcome]:
    """Call ``handler`` once (it must be due) and return its new state and outcome (awaitable).

    Returns when the handler returns, fails, or its timeout passes. Cancellation from outside
    propagates unchanged (the state is then not updated: the attempt did not happen). When the
    operator records metrics, the call's outcome and duration are reported to them.
    """
    # Not a coroutine itself: without metrics the caller awaits the call's own coroutine, one
    # frame less for every daemon that waits inside its handler for its whole life.
    if current_instruments() is None:
        return _execute_handler(handler, state, kwargs, now=now, defaults=defaults, logger=logger)
    return _execute_measured(handler, state, kwargs, now=now, defaults=defaults, logger=logger)


async def _execute_measured(
    handler: BaseHandler,
    state: Any,
    kwargs: Mapping[str, Any],
    *,
    now: float,
    defaults: Defaults,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
) -> Outcome:
    instruments = current_instruments()
    assert instruments is not None
    began = anyio.current_time()
    outcome = await _execute_handler(
        handler, state, kwargs, now=now, defaults=defaults, logger=logger
    )
    instruments.handler_finished(handler.id, outcome_name(outcome), anyio.current_time() - began)
    return outcome


# Module functions, not closures in the call: a daemon waiting in its handler holds no cells.
def _fail(
    state: Any,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    exc: BaseException,
    message: str,
) -> Outcome:
    logger.error(message, extra={"reason": "Error"})
    return Outcome(
        state=attrs.evolve(state, failed=True, delayed=None, message=message),
        exception=exc,
    )


def _retry(
    state: Any,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
    hid: str,
    retries: int | None,
    now: float,
    exc: BaseException,
    delay: float,
    message: str,
) -> Outcome:
    count = state.retries + 1
    if retries is not None and count >= retries:
        err = HandlerRetriesError(f"Handler {hid!r} failed {count} times: {exc}")
        return _fail(
            state, logger, err, f"Handler {hid!r} has exceeded its {retries} retries: {exc}"
        )
    logger.warning(f"{message} Will retry in {delay:g}s.", extra={"reason": "Error"})
    return Outcome(
        state=attrs.evolve(state, retries=count, delayed=now + delay, message=str(exc)),
        exception=exc,
        delay=delay,
    )


def outcome_name(outcome: Outcome) -> str:
    """``success``, ``retry``, ``failure`` or ``ignored`` (an error the handler's mode ignores)."""
    if outcome.delay is not None:
        return "retry"
    if outcome.state.failed:
        return "failure"
    return "success" if outcome.exception is None else "ignored"


async def _execute_handler(
    handler: BaseHandler,
    state: Any,
    kwargs: Mapping[str, Any],
    *,
    now: float,
    defaults: Defaults,
    logger: logging.LoggerAdapter,  # type: ignore[type-arg]
) -> Outcome:
    """Call ``handler`` once (it must be due) and return its new state and outcome.

    Returns when the handler returns, fails, or its timeout passes. Cancellation from outside
    propagates unchanged (the state is then not updated: the attempt did not happen).
    """
    timeout = handler.timeout if handler.timeout is not None else defaults.timeout
    retries = handler.retries if handler.retries is not None else defaults.retries
    backoff = handler.backoff if handler.backoff is not None else defaults.backoff
    mode = handler.errors if handler.errors is not None else defaults.errors
    hid = handler.id

    if timeout is not None and now - state.started >= timeout:
        err = HandlerTimeoutError(f"Handler {hid!r} has timed out after {timeout:g}s")
        return _fail(state, logger, err, f"Handler {hid!r} has timed out after {timeout:g}s.")

    try:
        if timeout is not None:
            remaining = state.started + timeout - now
            with anyio.move_on_after(remaining) as scope:
                result = await invoke(handler.fn, kwargs, thread_limit=defaults.thread_limit)
            if scope.cancelled_caught:
                err = HandlerTimeoutError(f"Handler {hid!r} has timed out after {timeout:g}s")
                return _fail(
                    state, logger, err, f"Handler {hid!r} has timed out after {timeout:g}s."
                )
        else:
            # Awaited here, not in invoke(): an async handler (a daemon waiting for its whole
            # life) runs with no frame of ours between this one and its own.
            call, token = begin_call(handler.fn, kwargs, thread_limit=defaults.thread_limit)
            try:
                result = await call
            except (RuntimeError, TypeError) as exc:
                if signature_of(handler.fn).is_async:  # a sync one's errors are its own
                    raise_if_asyncio_under_trio(handler.fn, exc)
                raise
            finally:
                end_call(token)
        result = check_result(hid, result)
    except TemporaryError as exc:
        delay = exc.delay if exc.delay is not None else backoff
        return _retry(
            state,
            logger,
            hid,
            retries,
            now,
            exc,
            delay,
            f"Handler {hid!r} failed temporarily: {exc or type(exc).__name__}.",
        )
    except PermanentError as exc:
        return _fail(
            state, logger, exc, f"Handler {hid!r} failed permanently: {exc or type(exc).__name__}."
        )
    except Exception as exc:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if mode is ErrorsMode.IGNORED:
            logger.exception(
                f"Handler {hid!r} failed with an exception; ignored: {text}",
                extra={"reason": "Error"},
            )
            return Outcome(state=attrs.evolve(state, done=True, delayed=None), exception=exc)
        if mode is ErrorsMode.PERMANENT:
            logger.exception(
                f"Handler {hid!r} failed with an exception; will not retry.",
                extra={"reason": "Error"},
            )
            return Outcome(
                state=attrs.evolve(state, failed=True, delayed=None, message=text), exception=exc
            )
        logger.debug("Handler %r raised", hid, exc_info=True)
        return _retry(
            state,
            logger,
            hid,
            retries,
            now,
            exc,
            backoff,
            f"Handler {hid!r} failed with an exception: {text}.",
        )
    logger.info(f"Handler {hid!r} succeeded.", extra={"reason": "Success"})
    return Outcome(state=state.succeeded(), result=result)
