"""Kubernetes Events about objects: queued without waiting, posted in batches off the hot path.

:class:`EventPoster` is the only thing that talks to the API about Events. Handlers, loggers and
processing rounds call :meth:`EventPoster.post_nowait` (any thread, never blocks, never raises);
the reactor runs :meth:`EventPoster.run` in its nursery, which collects events for
``posting.batch_window``, folds identical ones into one (with a count in the message), and posts
them with a small concurrency limit and a rate limit. Events beyond the queue size or the rate
are dropped with a log line: losing an Event never stops or slows the operator.

``trikopf.info``/``warn``/``exception``/``event`` post through the poster of the running
operator (found in a context variable that the reactor and processing set).
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.from_thread
import attrs

from trikopf._util.clock import current_time
from trikopf.settings import OperatorSettings, PostingSettings

__all__ = [
    "EventClient",
    "EventPoster",
    "K8sEvent",
    "current_poster",
    "event",
    "exception",
    "info",
    "object_ref",
    "set_current_poster",
    "warn",
]

logger = logging.getLogger("trikopf.posting")

_POSTING_CONCURRENCY = 8
_MAX_MESSAGE = 1024
_DROP_REPORT_INTERVAL = 10.0


class EventClient(Protocol):
    """What the poster needs of the API client (``ApiClient.post_event``)."""

    async def post_event(
        self, *, involved: Mapping[str, Any], type: str, reason: str, message: str
    ) -> Any: ...


@attrs.frozen(kw_only=True)
class K8sEvent:
    """One Event to post: a reference to the object, ``Normal``/``Warning``, reason, message."""

    involved: Mapping[str, Any]
    type: str
    reason: str
    message: str

    def key(self) -> tuple[Any, ...]:
        inv = self.involved
        return (inv.get("uid"), inv.get("name"), self.type, self.reason, self.message)


def object_ref(body: Mapping[str, Any]) -> dict[str, Any]:
    """A small reference to an object (apiVersion, kind, name, namespace, uid), for Events."""
    meta = body.get("metadata") or {}
    ref: dict[str, Any] = {}
    # (Once per handler outcome that is logged: no intermediate dict to filter.)
    if (value := body.get("apiVersion")) is not None:
        ref["apiVersion"] = value
    if (value := body.get("kind")) is not None:
        ref["kind"] = value
    if (value := meta.get("name")) is not None:
        ref["name"] = value
    if (value := meta.get("uid")) is not None:
        ref["uid"] = value
    if value := meta.get("namespace"):
        ref["namespace"] = value
    return ref


@attrs.define(eq=False)
class EventPoster:
    """Queues Events and posts them in batches; run :meth:`run` in the operator's nursery.

    ``post_nowait`` may be called before ``run`` starts; the queue is drained once it runs.
    """

    client: EventClient
    settings: OperatorSettings | PostingSettings = attrs.field(factory=OperatorSettings)
    # Queued Events folded as they come: (uid, name, type, reason, message) → [event, count],
    # in the order of their first arrival.
    _queue: dict[tuple[Any, ...], list[Any]] = attrs.field(factory=dict, init=False)
    _wakeup: anyio.Event | None = attrs.field(default=None, init=False)
    _loop_thread: int | None = attrs.field(default=None, init=False)
    _tokens: float = attrs.field(default=0.0, init=False)
    _refilled: float | None = attrs.field(default=None, init=False)  # None: a full bucket
    posted: int = attrs.field(default=0, init=False)
    dropped: int = attrs.field(default=0, init=False)
    failed: int = attrs.field(default=0, init=False)
    _unreported: int = attrs.field(default=0, init=False)
    _reported_at: float = attrs.field(default=-math.inf, init=False)

    @property
    def _posting(self) -> PostingSettings:
        s = self.settings
        return s.posting if isinstance(s, OperatorSettings) else s

    def post_nowait(
        self, involved: Mapping[str, Any], *, type: str, reason: str, message: str
    ) -> None:
        """Queue one Event about ``involved`` (a body or a reference); returns at once.

        Safe from worker threads. Never raises.
        """
        if not self._posting.enabled:
            return
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 1] + "…"
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            try:
                anyio.from_thread.run_sync(self._enqueue, involved, type, reason, message)
            except RuntimeError:  # not a thread that the event loop started
                logger.debug("Event dropped: posted from a foreign thread: %s", message)
            return
        self._enqueue(involved, type, reason, message)

    def _enqueue(self, involved: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        # Folded into an identical queued Event, or dropped at once when it cannot be posted:
        # the next batch posts at most floor(rate_limit) distinct Events (the bucket holds no
        # more tokens than that), in the order they came, so one arriving behind as many is
        # dropped now rather than queued, folded and dropped then (a burst of objects).
        ref = (involved.get("metadata") or {}) if "metadata" in involved else involved
        key = (ref.get("uid"), ref.get("name"), type, reason, message)
        queue = self._queue
        entry = queue.get(key)
        if entry is not None:
            entry[1] += 1
            return
        posting = self._posting
        if len(queue) >= posting.queue_size:
            self._drop(1, "the queue is full", message)
            return
        if len(queue) >= int(posting.rate_limit):
            self._drop(1, "over the rate limit", message)
            return
        if "metadata" in involved:
            involved = object_ref(involved)
        queue[key] = [K8sEvent(involved=involved, type=type, reason=reason, message=message), 1]
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Post queued Events until cancelled; what is queued at cancellation is dropped.

        Returns only by cancellation. Posting errors are logged, never raised.
        """
        self._loop_thread = threading.get_ident()
        task_status.started()
        try:
            while True:
                if not self._queue:
                    self._wakeup = anyio.Event()
                    await self._wakeup.wait()
                    self._wakeup = None
                if self._posting.batch_window:
                    await anyio.sleep(self._posting.batch_window)  # collect a batch
                await self._post_batch(self._drain())
        finally:
            self._wakeup = None
            self._loop_thread = None

    async def flush(self) -> None:
        """Post everything queued now, without waiting for the batch window (tests, shutdown)."""
        await self._post_batch(self._drain())

    def _drain(self) -> list[tuple[K8sEvent, int]]:
        queue, self._queue = self._queue, {}
        return [(item, count) for item, count in queue.values()]

    def _drop(self, count: int, why: str, message: str) -> None:
        # One warning per interval, not one per Event: a flood of drops must not flood the log.
        self.dropped += count
        self._unreported += count
        now = time.monotonic()
        if now - self._reported_at >= _DROP_REPORT_INTERVAL:
            logger.warning(
                "%d Event(s) dropped (%s), e.g. %r; posting.rate_limit/queue_size bound them.",
                self._unreported,
                why,
                message,
            )
            self._unreported = 0
            self._reported_at = now

    def _take_token(self) -> bool:
        now = current_time()
        rate = self._posting.rate_limit
        if self._refilled is None:
            self._tokens = rate
        else:
            self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    async def _post_batch(self, batch: Iterable[tuple[K8sEvent, int]]) -> None:
        limiter = anyio.CapacityLimiter(_POSTING_CONCURRENCY)
        async with anyio.create_task_group() as tg:
            for item, count in batch:
                if not self._take_token():
                    self._drop(count, "over the rate limit", item.message)
                    continue
                tg.start_soon(self._post_one, item, count, limiter)

    async def _post_one(self, item: K8sEvent, count: int, limiter: anyio.CapacityLimiter) -> None:
        message = item.message if count == 1 else f"{item.message} (x{count})"
        async with limiter:
            try:
                # A post that has begun is finished (bounded) even when the operator stops: a
                # request cancelled while its body is sent leaves httpx's body stream open.
                with anyio.CancelScope(shield=True), anyio.fail_after(_POST_TIMEOUT):
                    await self.client.post_event(
                        involved=item.involved, type=item.type, reason=item.reason, message=message
                    )
            except Exception as exc:  # an Event is best effort: log, never fail the operator
                self.failed += count
                logger.debug("Event not posted (%s): %s", exc, message)
            else:
                self.posted += count


# How long one Event post may take once begun (it is not cancelled halfway).
_POST_TIMEOUT = 5.0

_CURRENT: contextvars.ContextVar[EventPoster | None] = contextvars.ContextVar(
    "trikopf_poster", default=None
)


def set_current_poster(poster: EventPoster | None) -> contextvars.Token[EventPoster | None]:
    """Make ``poster`` the one that ``trikopf.info`` & co. use in this task and its children."""
    return _CURRENT.set(poster)


def current_poster() -> EventPoster:
    """The poster of the running operator; :class:`RuntimeError` outside of one."""
    poster = _CURRENT.get()
    if poster is None:
        raise RuntimeError(
            "trikopf.info/warn/exception/event post Events through a running operator; "
            "call them from handlers (or code that the operator runs)"
        )
    return poster


def _bodies(objs: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(objs, Mapping):
        return [objs]
    return list(objs)


def event(
    objs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    *,
    type: str,
    reason: str,
    message: str = "",
) -> None:
    """Post a Kubernetes Event about one object (or each of several); returns at once.

    ``type`` is ``Normal`` or ``Warning``. The Event is queued and posted in the background.
    """
    if type not in ("Normal", "Warning"):
        raise ValueError(f"An Event's type is 'Normal' or 'Warning', got {type!r}")
    if not isinstance(reason, str) or not reason:
        raise ValueError(f"An Event needs a non-empty reason, got {reason!r}")
    poster = current_poster()
    for body in _bodies(objs):
        poster.post_nowait(object_ref(body), type=type, reason=reason, message=message)


def info(
    objs: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, reason: str, message: str = ""
) -> None:
    """Post a ``Normal`` Event about the object(s); returns at once."""
    event(objs, type="Normal", reason=reason, message=message)


def warn(
    objs: Mapping[str, Any] | Iterable[Mapping[str, Any]], *, reason: str, message: str = ""
) -> None:
    """Post a ``Warning`` Event about the object(s); returns at once."""
    event(objs, type="Warning", reason=reason, message=message)


def exception(
    objs: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    *,
    reason: str = "Failure",
    message: str = "",
    exc: BaseException | None = None,
) -> None:
    """Post a ``Warning`` Event about an error (the exception's text is appended)."""
    if exc is None:
        import sys

        exc = sys.exc_info()[1]
    if exc is not None:
        message = f"{message} {type(exc).__name__}: {exc}".strip()
    event(objs, type="Warning", reason=reason, message=message)
