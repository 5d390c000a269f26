"""The watcher of one (resource, namespace): list, then watch from the list's resourceVersion.

The watcher never dies on its own: API errors and dropped connections are logged and retried
with a doubling backoff, a ``410 Gone`` (an expired resourceVersion) leads to a fresh list, and a
stream that the server ends (its ``timeoutSeconds``) or that goes quiet for longer than the
inactivity timeout is reopened from the last resourceVersion seen (bookmarks included).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any, Protocol

import anyio
import anyio.abc

from trikopf._util.instruments import current_instruments
from trikopf._util.memory import note_work
from trikopf.client import ApiClient
from trikopf.client.errors import (
    ApiConnectionError,
    ApiError,
    BadRequest,
    ClientError,
    Forbidden,
    Gone,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from trikopf.client.watching import WatchStream
from trikopf.settings import WatchingSettings
from trikopf.structs import Resource, WatchEvent

__all__ = ["Dispatcher", "serve_watch", "where"]

logger = logging.getLogger("trikopf.reactor.watching")

# Errors that, during the very first list, mean the operator cannot work at all: reported to
# the caller instead of retried. After the start, every error is retried.
_FATAL_AT_START = (Unauthorized, Forbidden, NotFound, BadRequest)

# A watch that ends with no events sooner than this after it was opened counts as a failure
# (backoff before reconnecting); a longer one was just quiet.
_QUICK_END = 1.0


class Dispatcher(Protocol):
    """Where a watcher sends events: a :class:`ResourceSupervisor` or a discovery tracker.

    A dispatcher may also have the two methods of :class:`Backpressure`: then the watcher
    stops reading while it says it is congested.
    """

    def dispatch(self, event: WatchEvent) -> None: ...

    def forget_missing(self, present: Iterable[str]) -> None: ...


class Backpressure(Protocol):
    """The optional half of a :class:`Dispatcher`: "too much is queued, stop reading for now".

    ``congested()`` is cheap and synchronous (the watcher asks it after each received batch
    and after each listed page); ``wait_uncongested()`` returns once enough of the backlog is
    handled (at once if it is not congested), and is cancelled with the watcher.
    """

    def congested(self) -> bool: ...

    async def wait_uncongested(self) -> None: ...


async def _wait_uncongested(pressure: Backpressure, limit: anyio.CancelScope) -> None:
    """Wait for the supervisor's backlog; the time is not counted against ``limit``.

    The client timeout is about the server not sending; waiting on our own backlog is not that.
    """
    deadline, limit.deadline = limit.deadline, math.inf
    paused = anyio.current_time()
    try:
        await pressure.wait_uncongested()
    finally:
        limit.deadline = deadline + (anyio.current_time() - paused)


def _backpressure(supervisor: Dispatcher) -> Backpressure | None:
    """The dispatcher's backpressure methods, if it has both (looked up once per watcher)."""
    if callable(getattr(supervisor, "congested", None)) and callable(
        getattr(supervisor, "wait_uncongested", None)
    ):
        return supervisor  # type: ignore[return-value]
    return None


def where(resource: Resource, namespace: str | None) -> str:
    """A short human-readable name of a watch, for logs: ``kopfexamples.kopf.dev in ns1``."""
    name = resource.plural if not resource.group else f"{resource.plural}.{resource.group}"
    return f"{name} in {namespace}" if namespace else f"{name} cluster-wide"


async def _relist(
    client: ApiClient,
    resource: Resource,
    namespace: str | None,
    supervisor: Dispatcher,
    settings: WatchingSettings,
) -> str | None:
    """List every object (page by page), dispatch each, and return the list's resourceVersion.

    Between pages it waits while the dispatcher is congested (if it tells).
    """
    pressure = _backpressure(supervisor)
    seen: set[str] = set()
    continue_: str | None = None
    resource_version: str | None = None
    while True:
        page = await client.list(
            resource, namespace=namespace, limit=settings.list_page_size, continue_=continue_
        )
        resource_version = page.resource_version
        note_work()
        for item in page.items:
            # Items of a list carry no kind/apiVersion; the handlers and Events need them.
            item.setdefault("kind", resource.kind)
            item.setdefault("apiVersion", resource.api_version)
            uid = item.get("metadata", {}).get("uid")
            if uid:
                seen.add(uid)
            supervisor.dispatch(WatchEvent(type="ADDED", object=item, listed=True))
        continue_ = page.continue_
        if not continue_:
            break
        if pressure is not None and pressure.congested():
            await pressure.wait_uncongested()
    # Objects deleted while nobody watched (after a 410 or an outage) are let go.
    supervisor.forget_missing(seen)
    return resource_version


async def serve_watch(
    client: ApiClient,
    resource: Resource,
    namespace: str | None,
    *,
    supervisor: Dispatcher,
    settings: WatchingSettings,
    strict: bool = True,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """List and watch ``resource`` in ``namespace`` forever, dispatching events to ``supervisor``.

    Reports readiness through ``task_status`` once the first list is dispatched. With
    ``strict``, a first list that fails with an authorisation, not-found or bad-request error is
    raised to the caller (the operator cannot start); otherwise every error is logged and
    retried. Starts no tasks of its own; runs until cancelled; never returns.

    The events of one receive from the connection are dispatched in one synchronous pass. If
    ``supervisor`` has the :class:`Backpressure` methods, the watcher waits after such a pass
    while the supervisor is congested, so that the backlog (and the memory it holds) stays
    bounded; the events wait in the socket and the server's buffers meanwhile. That wait does
    not count against ``settings.client_timeout``.
    """
    label = where(resource, namespace)
    backoff = settings.reconnect_backoff
    resource_version: str | None = None
    ready = False
    # Metrics, when the operator records them: resolved once, one call per event.
    instruments = current_instruments()
    count_event = instruments.watch_events(label) if instruments is not None else None
    pressure = _backpressure(supervisor)
    dispatch = supervisor.dispatch
    while True:
        received = 0
        opened = anyio.current_time()
        try:
            if resource_version is None:
                resource_version = await _relist(client, resource, namespace, supervisor, settings)
                logger.debug("Listed %s at resourceVersion %s.", label, resource_version)
                if not ready:
                    ready = True
                    task_status.started()
                backoff = settings.reconnect_backoff
            async with client.watch(
                resource,
                namespace=namespace,
                resource_version=resource_version,
                allow_bookmarks=settings.allow_bookmarks,
                timeout_seconds=(
                    None if settings.server_timeout is None else math.ceil(settings.server_timeout)
                ),
                inactivity_timeout=settings.inactivity_timeout,
            ) as events:
                with anyio.fail_after(settings.client_timeout or math.inf) as limit:
                    stream: Any = events  # typed as the client's; test doubles differ
                    if not isinstance(stream, WatchStream):
                        # Any other async iterator of events: one at a time.
                        async for event in stream:
                            note_work()
                            received += 1
                            if count_event is not None:
                                count_event()
                            resource_version = event.resource_version or resource_version
                            if event.type != "BOOKMARK":
                                dispatch(event)
                    else:
                        taken = events.taken
                        try:
                            while await events.receive_more():
                                note_work()  # no memory release while events flow
                                if count_event is None:
                                    events.deliver(dispatch)  # no Python step per event here
                                else:
                                    for event in events.received():
                                        received += 1
                                        count_event()
                                        if event.type != "BOOKMARK":
                                            dispatch(event)
                                if pressure is not None and pressure.congested():
                                    await _wait_uncongested(pressure, limit)
                        finally:
                            # The stream tracks the last resourceVersion it delivered.
                            resource_version = events.resource_version or resource_version
                            received += events.taken - taken
            if received or anyio.current_time() - opened >= _QUICK_END:
                # A stream that brought events, or simply lasted (a quiet resource whose
                # server timeout passed): reconnect at once.
                backoff = settings.reconnect_backoff
                if instruments is not None:
                    instruments.watch_reconnected(label)
                continue
            # An empty stream that ended at once: do not reconnect in a tight loop.
            delay = backoff
            logger.debug("The watch of %s ended without events; reconnecting.", label)
        except Gone:
            logger.info("The resourceVersion of %s expired; listing again.", label)
            resource_version = None
            if instruments is not None:
                instruments.watch_relisted(label)
            continue
        except (ClientError, TimeoutError, OSError) as exc:
            if strict and not ready and isinstance(exc, _FATAL_AT_START):
                raise
            if received:
                backoff = settings.reconnect_backoff
            delay = backoff
            if isinstance(exc, TooManyRequests) and exc.retry_after is not None:
                delay = max(delay, exc.retry_after)
            level = (
                logging.INFO
                if isinstance(exc, (ApiConnectionError, TimeoutError))
                else logging.WARNING
            )
            if isinstance(exc, ServerError):
                level = logging.WARNING
            logger.log(
                level,
                "The watch of %s failed (%s); retrying in %.1fs.",
                label,
                _describe(exc),
                delay,
            )
        except Exception:
            # Never left dead: even a bug in the stream handling only costs a reconnect.
            delay = backoff
            logger.exception(
                "The watch of %s failed unexpectedly; retrying in %.1fs.", label, delay
            )
        if instruments is not None:
            instruments.watch_reconnected(label)
        await anyio.sleep(delay)
        backoff = min(backoff * 2, settings.reconnect_backoff_max)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, TimeoutError):
        return "no data within the timeout"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
