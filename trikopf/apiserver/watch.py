"""Watch streams: one JSON event per line, flushed as it happens.

A watcher keeps a position in its resource's event history and sends, on each wake-up,
every retained event after it in one chunk: the bytes were serialised once when the
event was stored and are shared by every watcher.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs

from trikopf._util.http_server import AbortResponse
from trikopf.apiserver.errors import status_body
from trikopf.apiserver.faults import Faults
from trikopf.apiserver.jsonio import dumps
from trikopf.apiserver.resources import ResourceType
from trikopf.apiserver.store import HistoryEvent, Store

__all__ = ["WatchRequest", "stream_watch"]

Matcher = Callable[[dict[str, Any]], bool]
_CHUNK_LIMIT = 256 * 1024
_BATCH_EVENTS = 256  # events per chunk at most, so that one watcher never sends megabytes at once


@attrs.frozen(kw_only=True)
class WatchRequest:
    resource: ResourceType
    version: str
    namespace: str | None
    matcher: Matcher | None
    resource_version: str  # "" or "0" or a number (already validated)
    allow_bookmarks: bool
    timeout: float | None
    bookmark_interval: float
    send_initial_events: bool = False


def _error_line(code: int, message: str, reason: str | None = None) -> bytes:
    return b'{"type":"ERROR","object":%s}\n' % dumps(status_body(code, reason, message))


def _event_line(type_: str, raw: bytes) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (type_.encode(), raw)


def _bookmark_line(api_version: str, kind: str, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return _event_line(
        "BOOKMARK", dumps({"kind": kind, "apiVersion": api_version, "metadata": meta})
    )


def stream_watch(store: Store, faults: Faults, request: WatchRequest) -> AsyncIterator[bytes]:
    """The chunks of one watch response.

    Returns an async generator that ends when ``timeoutSeconds`` passes, when watches are
    dropped by fault injection, when the resource is unregistered (its CRD deleted), or
    after an ERROR event (410 for a compacted version). The HTTP server cancels it when
    the client hangs up. It never yields inside a cancel scope.
    """
    return _stream(store, faults, request)


async def _stream(store: Store, faults: Faults, request: WatchRequest) -> AsyncIterator[bytes]:
    resource = request.resource
    key = resource.key
    api_version = resource.api_version(request.version)
    storage_api_version = resource.api_version()
    namespace = request.namespace
    matcher = request.matcher
    generation = store.watch_generation
    epoch = store.epoch(key)
    deadline = (anyio.current_time() + request.timeout) if request.timeout else None
    log = store.log(key)

    def selected(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if namespace is not None and obj["metadata"].get("namespace", "") != namespace:
            return False
        return matcher is None or matcher(obj)

    if request.resource_version in ("", "0"):
        position = log.end
        lines: list[bytes] = []
        size = 0
        for obj in store.iter_objects(resource, namespace):
            if matcher is not None and not matcher(obj):
                continue
            if api_version != storage_api_version:
                raw = dumps({**obj, "apiVersion": api_version})
            else:
                raw = store.raw_of(resource, obj)  # serialised once, when stored
            line = _event_line("ADDED", raw)
            lines.append(line)
            size += len(line)
            if size >= _CHUNK_LIMIT:
                yield b"".join(lines)
                lines, size = [], 0
        if request.send_initial_events and request.allow_bookmarks:
            lines.append(_bookmark_line(api_version, resource.kind, store.rv, initial_end=True))
        if lines:
            yield b"".join(lines)
    else:
        asked = int(request.resource_version)
        if asked < log.compacted_rv:
            yield _error_line(
                410, f"too old resource version: {asked} ({log.compacted_rv})", "Expired"
            )
            return
        position = log.position_after(asked)

    # Bookmarks are due every interval (not only after idle intervals), sent when the
    # watcher has caught up, so their version covers everything before it.
    last_bookmark = anyio.current_time()
    while True:
        if store.watch_generation != generation:
            if store.abort_dropped_watches:
                raise AbortResponse("watch dropped by fault injection")
            return  # dropped by fault injection
        unregistered = store.epoch(key) != epoch
        if unregistered and position >= log.end:
            return  # the resource is gone, and its last events were sent
        current = anyio.current_time()
        if deadline is not None and current >= deadline:
            return
        if (faults.watches_stalled or faults.paused) and not unregistered:
            waiter = log.waiter()
            with anyio.move_on_after(deadline - current if deadline is not None else 3600):
                await waiter.wait()
            continue
        if position < log.base:
            yield _error_line(
                410,
                f"too old resource version: watcher fell behind ({log.compacted_rv})",
                "Expired",
            )
            return
        if position < log.end:
            start = position - log.base
            events = log.events[start : start + _BATCH_EVENTS]
            position += len(events)
            chunk = _render(events, api_version, namespace, matcher, selected)
            if chunk:
                yield chunk
            else:
                await anyio.lowlevel.checkpoint()
            continue
        # Caught up: a bookmark if one is due, else sleep until an event, bookmark or deadline.
        if request.allow_bookmarks and current >= last_bookmark + request.bookmark_interval:
            last_bookmark = current
            yield _bookmark_line(api_version, resource.kind, store.rv)
            continue
        timeout = 3600.0
        if request.allow_bookmarks:
            timeout = last_bookmark + request.bookmark_interval - current
        if deadline is not None:
            timeout = min(timeout, deadline - current)
        waiter = log.waiter()
        with anyio.move_on_after(timeout):
            await waiter.wait()


def _render(
    events: list[HistoryEvent],
    api_version: str,
    namespace: str | None,
    matcher: Matcher | None,
    selected: Callable[[dict[str, Any] | None], bool],
) -> bytes:
    if matcher is None:
        parts = []
        for event in events:
            if namespace is not None and event.namespace != namespace:
                continue
            if event.obj.get("apiVersion") == api_version:
                parts.append(event.line)
            else:
                parts.append(_event_line(event.type, event.raw_for(api_version)))
        return b"".join(parts)
    parts = []
    for event in events:
        now_in = selected(event.obj)
        if event.type == "ADDED":
            type_ = "ADDED" if now_in else None
        elif event.type == "DELETED":
            type_ = "DELETED" if now_in or selected(event.old) else None
        else:
            was_in = selected(event.old)
            if now_in and was_in:
                type_ = "MODIFIED"
            elif now_in:
                type_ = "ADDED"
            elif was_in:
                type_ = "DELETED"
            else:
                type_ = None
        if type_ is not None:
            parts.append(_event_line(type_, event.raw_for(api_version)))
    return b"".join(parts)
