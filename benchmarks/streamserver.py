"""A fast fake Kubernetes API server for benchmarks: pre-generated watch bytes on plain HTTP.

It serves one custom resource, ``kopfexamples.kopf.dev/v1`` (namespaced, no status
subresource), well enough for an operator framework to discover, list and watch it, and to
patch the objects and post core/v1 Events about them. It is not a real API server: its only
job is to never be the bottleneck of a benchmark, so the watch stream is generated before the
first client connects and sent as large slices of one pre-built buffer.

Run it as its own process, so that it does not share a GIL with the measured framework::

    python benchmarks/streamserver.py --port 0 --stream 10000 --gate

It prints one JSON line on stdout when it is ready, ``{"url": "http://127.0.0.1:PORT", ...}``,
and serves until it gets SIGINT/SIGTERM. From Python, :class:`StreamServer` starts, queries
and stops it (stdlib only, so any benchmark can use it)::

    with StreamServer(listed=0, stream=10_000, gate=True) as server:
        server.url                     # "http://127.0.0.1:PORT"
        server.write_kubeconfig(path)  # a kubeconfig pointing at it (no auth)
        server.wait_for_watchers(1)    # the framework has opened its watch
        server.release()               # start streaming the pre-generated events
        server.stats()                 # request counters and per-watch delivery figures

The data it serves (all objects ~1.5 KB, realistic metadata with managedFields):

- ``--list N``: N objects returned by the list request, resourceVersions ``1..N``; the list's
  own resourceVersion is ``N``. ``--handled kopf`` (or ``trikopf``) marks them as already
  handled by that framework (its last-handled-configuration annotation holding the object's
  essence) so that a restarted operator only resumes them.
- ``--stream M``: M watch events for M distinct further objects (resourceVersions
  ``N+1..N+M``), alternating ADDED and MODIFIED unless ``--added-only``. One JSON event per
  HTTP chunk, each ending with a newline. A watch from resourceVersion X gets the events
  after X (no resourceVersion, or "0", means from the first one), then stays open for echoes
  until ``timeoutSeconds`` passes or the client goes away.
- ``--rate R``: send the stream at a steady R events/s instead of as fast as possible; each
  object then carries the monotonic send time (``time.monotonic()``, comparable across
  processes on Linux) in the annotation ``bench.trikopf.dev/sent-at``.
- ``--gate``: hold the stream of every watch until ``POST /_bench/release``.

Writes: a PATCH (merge-patch or JSON-patch; ``/status`` too) or a POST of a new object is
applied to the stored object, gets the next resourceVersion, and is echoed as a MODIFIED or
ADDED event to every open watch, as a real API server would. POSTed core/v1 Events are
accepted and counted, not stored. Everything is counted in ``GET /_bench/stats``:
requests by method and kind, the time of the first and the last write request, how many
objects have been given a non-empty status (and when the last one was), and for each
watch the events and bytes sent, the time its pre-generated part started to go out and the
time its last byte left the server's buffers (so a fast reader gives the delivery rate).
Times are ``time.monotonic()`` values of this process, comparable with other processes on
Linux.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    loads = orjson.loads
except ImportError:  # pragma: no cover - the bench venv has orjson

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    loads = json.loads


GROUP = "kopf.dev"
VERSION = "v1"
PLURAL = "kopfexamples"
KIND = "KopfExample"
NAMESPACE = "bench"
SENT_AT_KEY = "bench.trikopf.dev/sent-at"
SENT_AT_PLACEHOLDER = "0" * 20  # replaced by f"{time.monotonic():020.6f}" when paced
BASE_PATH = f"/apis/{GROUP}/{VERSION}"
KOPF_LAST_HANDLED = "kopf.zalando.org/last-handled-configuration"
TRIKOPF_LAST_HANDLED = "trikopf.dev/last-handled-configuration"
FRAMEWORKS = ("kopf", "trikopf")


# --------------------------------------------------------------------------- objects


def object_uid(index: int) -> str:
    return f"{index:08x}-6b6f-4b70-8000-{index:012x}"


def make_object(
    index: int,
    *,
    resource_version: int,
    handled: str | None = None,
    paced: bool = False,
) -> dict[str, Any]:
    """Build one realistic ~1.5 KB KopfExample object (distinct name, uid and spec)."""
    name = f"example-{index:07d}"
    spec = {
        "duration": f"{1 + index % 60}m",
        "field": f"value-{index}",
        "items": ["item1", "item2", f"item-{index % 17}"],
        "replicas": 1 + index % 5,
        "image": "registry.example.com/team/app:1.27.3",
        "config": {"logLevel": "info", "retries": 3, "timeoutSeconds": 30},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "500m", "memory": "512Mi"},
        },
        "env": [
            {"name": "REGION", "value": "eu-central-1"},
            {"name": "FEATURE_FLAGS", "value": "alpha,beta,gamma"},
            {"name": "INSTANCE_INDEX", "value": str(index)},
        ],
        "description": "A KopfExample object generated for the trikopf benchmarks.",
    }
    labels = {
        "app.kubernetes.io/name": "kopfexample",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/part-of": "benchmarks",
        "shard": str(index % 8),
    }
    annotations: dict[str, str] = {"example.com/owner": "team-benchmarks"}
    if paced:
        annotations[SENT_AT_KEY] = SENT_AT_PLACEHOLDER
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": object_uid(index),
            "resourceVersion": str(resource_version),
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": labels,
            "annotations": annotations,
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:annotations": {".": {}, "f:example.com/owner": {}},
                            "f:labels": {".": {}, **{f"f:{k}": {} for k in labels}},
                        },
                        "f:spec": {".": {}, **{f"f:{k}": {} for k in spec}},
                    },
                }
            ],
        },
        "spec": spec,
    }
    # What each framework stores after handling: the essence (spec + user metadata), so that
    # a restarted operator sees nothing changed and only resumes the object. Only one of them:
    # each framework counts the other's annotation as user metadata.
    essence = {"spec": spec, "metadata": {"labels": labels, "annotations": dict(annotations)}}
    if handled == "kopf":
        annotations[KOPF_LAST_HANDLED] = json.dumps(essence, separators=(",", ":")) + "\n"
    elif handled == "trikopf":
        annotations[TRIKOPF_LAST_HANDLED] = json.dumps(
            essence, separators=(",", ":"), sort_keys=True, ensure_ascii=False
        )
    elif handled is not None:
        raise ValueError(f"handled= must be one of {FRAMEWORKS} or None, not {handled!r}")
    return body


def chunk(payload: bytes) -> bytes:
    """Frame one payload as one HTTP/1.1 chunk."""
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def event_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return dumps({"type": event_type, "object": obj}) + b"\n"


# --------------------------------------------------------------------------- patching


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply the RFC 6902 operations operator frameworks use (add, replace, remove, test)."""
    doc: Any = json.loads(json.dumps(target))
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1] if parts else ""
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ValueError(f"test failed at {op['path']}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise ValueError(f"unsupported JSON-patch op {kind!r}")
    return doc  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the server


class Dataset:
    """All bytes the server will send, built once before it starts listening."""

    def __init__(
        self,
        *,
        listed: int,
        streamed: int,
        handled: str | None,
        added_only: bool,
        paced: bool,
    ) -> None:
        self.listed = listed
        self.streamed = streamed
        self.paced = paced
        self.bodies: dict[str, bytes] = {}  # name -> JSON of the current object
        items = []
        for i in range(listed):
            obj = make_object(i, resource_version=i + 1, handled=handled)
            items.append(obj)
            self.bodies[obj["metadata"]["name"]] = dumps(obj)
        self.list_resource_version = listed
        self.list_bytes = dumps(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": f"{KIND}List",
                "metadata": {"resourceVersion": str(listed)},
                "items": items,
            }
        )
        del items
        # The stream: one contiguous buffer of chunks plus the offset where each one starts.
        self.lines: list[bytes] = []
        offsets = [0]
        parts = []
        for j in range(streamed):
            rv = listed + 1 + j
            obj = make_object(listed + j, resource_version=rv, paced=paced)
            etype = "ADDED" if added_only or j % 2 == 0 else "MODIFIED"
            line = event_line(etype, obj)
            self.bodies[obj["metadata"]["name"]] = dumps(obj)
            if paced:
                self.lines.append(line)
            framed = chunk(line)
            parts.append(framed)
            offsets.append(offsets[-1] + len(framed))
        self.stream_bytes = b"".join(parts)
        self.offsets = offsets
        self.object_size = (
            sum(len(b) for b in list(self.bodies.values())[:100]) / min(100, len(self.bodies))
            if self.bodies
            else 0
        )
        self.next_resource_version = listed + streamed + 1

    def first_index_after(self, resource_version: int) -> int:
        """Index of the first pre-generated event newer than ``resource_version``."""
        return min(max(0, resource_version - self.listed), self.streamed)


class Watch:
    """One open watch connection, as seen by the stats."""

    def __init__(self, wid: int, since: int) -> None:
        self.wid = wid
        self.since = since
        self.opened_at = time.monotonic()
        self.started_at: float | None = None  # pre-generated part started going out
        self.drained_at: float | None = None  # ... and fully left our buffers
        self.events = 0
        self.bytes = 0
        self.live: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed_at: float | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.wid,
            "since": self.since,
            "opened_at": self.opened_at,
            "started_at": self.started_at,
            "drained_at": self.drained_at,
            "closed_at": self.closed_at,
            "events": self.events,
            "bytes": self.bytes,
        }


class Server:
    def __init__(self, dataset: Dataset, *, rate: float, gate: bool) -> None:
        self.data = dataset
        self.rate = rate
        self.released = asyncio.Event()
        self.released_at: float | None = None
        if not gate:
            self.release()
        self.watches: list[Watch] = []
        self.open_watches: set[Watch] = set()
        self.echoes: list[tuple[int, bytes]] = []  # (resourceVersion, framed event)
        self.counts: dict[str, int] = {}
        self.first_write_at: float | None = None
        self.last_write_at: float | None = None
        self.writes = 0
        self.status_names: set[str] = set()  # objects that got a non-empty status written
        self.last_status_at: float | None = None

    def release(self) -> None:
        if not self.released.is_set():
            self.released_at = time.monotonic()
            self.released.set()

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    def note_write(self) -> None:
        now = time.monotonic()
        if self.first_write_at is None:
            self.first_write_at = now
        self.last_write_at = now
        self.writes += 1

    def stats(self) -> dict[str, Any]:
        return {
            "now": time.monotonic(),
            "released_at": self.released_at,
            "requests": dict(self.counts),
            "writes": self.writes,
            "status_objects": len(self.status_names),
            "last_status_at": self.last_status_at,
            "first_write_at": self.first_write_at,
            "last_write_at": self.last_write_at,
            "open_watches": len(self.open_watches),
            "watches": [w.summary() for w in self.watches],
            "listed": self.data.listed,
            "streamed": self.data.streamed,
            "object_size": self.data.object_size,
            "rate": self.rate,
        }

    def echo(self, event_type: str, body: bytes) -> None:
        line = b'{"type":"%s","object":%b}\n' % (event_type.encode(), body)
        framed = chunk(line)
        rv = self.data.next_resource_version - 1
        self.echoes.append((rv, framed))
        for watch in self.open_watches:
            watch.live.put_nowait(framed)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection: requests are handled one after another."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.closed = asyncio.Event()
        self.requests: asyncio.Queue[tuple[str, str, dict[str, str], bytes]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20, low=1 << 18)
        self.task = asyncio.get_running_loop().create_task(self.serve())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()
        self.can_write.set()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.can_write.clear()

    def resume_writing(self) -> None:
        self.can_write.set()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.requests.put_nowait((method, target, headers, body))

    # -- writing
    async def write(self, data: bytes | memoryview) -> None:
        assert self.transport is not None
        if self.closed.is_set():
            raise ConnectionResetError
        self.transport.write(data)
        if not self.can_write.is_set():
            await self.can_write.wait()
            if self.closed.is_set():
                raise ConnectionResetError

    async def wait_drained(self) -> None:
        assert self.transport is not None
        while self.transport.get_write_buffer_size() and not self.closed.is_set():
            self.transport.set_write_buffer_limits(high=0, low=0)
            self.can_write.clear()
            await self.can_write.wait()
        self.transport.set_write_buffer_limits(high=1 << 20, low=1 << 18)

    async def respond(
        self, status: int, body: bytes, content_type: str = "application/json"
    ) -> None:
        reason = {200: "OK", 201: "Created", 404: "Not Found", 400: "Bad Request"}.get(status, "X")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        await self.write(head + body)

    async def serve(self) -> None:
        try:
            while True:
                method, target, headers, body = await self.requests.get()
                await self.handle(method, target, headers, body)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if self.transport is not None:
                self.transport.close()

    # -- routing
    async def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        server = self.server
        url = urllib.parse.urlsplit(target)
        path = url.path.rstrip("/")
        query = urllib.parse.parse_qs(url.query)
        parts = path.split("/")
        if path.startswith("/_bench/"):
            if path == "/_bench/release":
                server.release()
            await self.respond(200, dumps(server.stats()))
            return
        if method == "GET":
            server.count("GET")
            doc = discovery(path)
            if doc is not None:
                await self.respond(200, dumps(doc))
                return
            resource = resource_path(parts)
            if resource is None:
                await self.respond(404, not_found(path))
                return
            namespace, name, _ = resource
            if name is None:
                if query.get("watch", ["false"])[0] in ("true", "1"):
                    server.count("WATCH")
                    await self.watch(namespace, query)
                else:
                    server.count("LIST")
                    if namespace in (None, NAMESPACE):
                        await self.respond(200, server.data.list_bytes)
                    else:
                        await self.respond(200, empty_list())
                return
            found = server.data.bodies.get(name)
            await self.respond(200, found) if found else await self.respond(404, not_found(path))
            return
        if method == "PATCH":
            server.count("PATCH")
            server.note_write()
            resource = resource_path(parts)
            if resource is None or resource[1] is None or resource[1] not in server.data.bodies:
                await self.respond(404, not_found(path))
                return
            name = resource[1]
            current = loads(server.data.bodies[name])
            try:
                patch = loads(body)
                if "json-patch" in headers.get("content-type", ""):
                    updated = json_patch(current, patch)
                else:
                    updated = merge_patch(current, patch)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                await self.respond(400, dumps({"kind": "Status", "message": str(exc)}))
                return
            updated["metadata"]["resourceVersion"] = str(server.data.next_resource_version)
            server.data.next_resource_version += 1
            new_body = dumps(updated)
            server.data.bodies[name] = new_body
            if updated.get("status") and name not in server.status_names:
                server.status_names.add(name)
                server.last_status_at = time.monotonic()
            server.echo("MODIFIED", new_body)
            await self.respond(200, new_body)
            return
        if method == "POST":
            server.note_write()
            if len(parts) >= 6 and parts[-1] == "events" and parts[1] == "api":
                server.count("POST events")
                await self.respond(201, body or b"{}")
                return
            resource = resource_path(parts)
            if resource is not None and resource[1] is None:
                server.count("POST objects")
                obj = loads(body)
                name = obj.get("metadata", {}).get("name", "")
                obj.setdefault("metadata", {})["resourceVersion"] = str(
                    server.data.next_resource_version
                )
                obj["metadata"].setdefault("uid", f"posted-{server.data.next_resource_version}")
                server.data.next_resource_version += 1
                new_body = dumps(obj)
                server.data.bodies[name] = new_body
                server.echo("ADDED", new_body)
                await self.respond(201, new_body)
                return
            server.count("POST other")
            await self.respond(201, body or b"{}")
            return
        server.count(method)
        await self.respond(404, not_found(path))

    async def watch(self, namespace: str | None, query: dict[str, list[str]]) -> None:
        server = self.server
        rv_text = query.get("resourceVersion", ["0"])[0] or "0"
        since = int(rv_text) if rv_text.isdigit() else 0
        timeout = float(query.get("timeoutSeconds", ["0"])[0] or 0)
        deadline = time.monotonic() + timeout if timeout > 0 else None
        watch = Watch(len(server.watches), since)
        server.watches.append(watch)
        server.open_watches.add(watch)
        # Echoes already made after `since` go first, then any further ones as they come.
        for rv, framed in server.echoes:
            if rv > since:
                watch.live.put_nowait(framed)
        try:
            await self.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            if namespace in (None, NAMESPACE):
                await self.send_stream(watch, since, deadline)
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                get = asyncio.ensure_future(watch.live.get())
                closed = asyncio.ensure_future(self.closed.wait())
                done, pending = await asyncio.wait(
                    {get, closed}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for fut in pending:
                    fut.cancel()
                if closed in done or self.closed.is_set():
                    raise ConnectionResetError
                if get in done:
                    framed = get.result()
                    await self.write(framed)
                    watch.events += 1
                    watch.bytes += len(framed)
            await self.write(b"0\r\n\r\n")
        finally:
            watch.closed_at = time.monotonic()
            server.open_watches.discard(watch)

    async def send_stream(self, watch: Watch, since: int, deadline: float | None) -> None:
        server = self.server
        data = server.data
        first = data.first_index_after(since)
        if first >= data.streamed:
            return
        if not server.released.is_set():
            closed = asyncio.ensure_future(self.closed.wait())
            released = asyncio.ensure_future(server.released.wait())
            await asyncio.wait({closed, released}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            released.cancel()
            if self.closed.is_set():
                raise ConnectionResetError
        watch.started_at = time.monotonic()
        if server.rate > 0:
            await self.send_paced(watch, first)
        else:
            view = memoryview(data.stream_bytes)
            start = data.offsets[first]
            end = len(data.stream_bytes)
            step = 1 << 18
            for pos in range(start, end, step):
                await self.write(view[pos : min(pos + step, end)])
            watch.events += data.streamed - first
            watch.bytes += end - start
        await self.wait_drained()
        watch.drained_at = time.monotonic()

    async def send_paced(self, watch: Watch, first: int) -> None:
        data = self.server.data
        interval = 1.0 / self.server.rate
        started = time.monotonic()
        placeholder = SENT_AT_PLACEHOLDER.encode()
        index = first
        while index < data.streamed:
            now = time.monotonic()
            due = first + int((now - started) / interval) + 1
            batch = []
            stamp = f"{now:020.6f}".encode()
            while index < min(due, data.streamed):
                line = data.lines[index].replace(placeholder, stamp, 1)
                batch.append(chunk(line))
                index += 1
            if batch:
                payload = b"".join(batch)
                await self.write(payload)
                watch.events += len(batch)
                watch.bytes += len(payload)
            next_due = started + (index - first) * interval
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))


def discovery(path: str) -> dict[str, Any] | None:
    if path == "/version":
        return {"major": "1", "minor": "32", "gitVersion": "v1.32.0-bench", "platform": "linux"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/api/v1":
        return {
            "kind": "APIResourceList",
            "groupVersion": "v1",
            "resources": [
                {
                    "name": "events",
                    "singularName": "event",
                    "namespaced": True,
                    "kind": "Event",
                    "verbs": ["create", "get", "list", "watch", "patch", "delete"],
                    "shortNames": ["ev"],
                },
                {
                    "name": "namespaces",
                    "singularName": "namespace",
                    "namespaced": False,
                    "kind": "Namespace",
                    "verbs": ["get", "list", "watch"],
                    "shortNames": ["ns"],
                },
            ],
        }
    if path == "/apis":
        gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [{"name": GROUP, "versions": [gv], "preferredVersion": gv}],
        }
    if path == f"/apis/{GROUP}":
        gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
        return {"kind": "APIGroup", "name": GROUP, "versions": [gv], "preferredVersion": gv}
    if path == BASE_PATH:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{GROUP}/{VERSION}",
            "resources": [
                {
                    "name": PLURAL,
                    "singularName": "kopfexample",
                    "namespaced": True,
                    "kind": KIND,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                    "shortNames": ["kex"],
                    "categories": ["all"],
                }
            ],
        }
    return None


def resource_path(parts: list[str]) -> tuple[str | None, str | None, str | None] | None:
    """Split a kopfexamples path into (namespace, name, subresource), or None if it is not one."""
    # ['', 'apis', 'kopf.dev', 'v1', ...]
    if parts[:4] != ["", "apis", GROUP, VERSION]:
        return None
    rest = parts[4:]
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or rest[0] != PLURAL or len(rest) > 3:
        return None
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    return namespace, name, sub


def not_found(path: str) -> bytes:
    return dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "NotFound",
            "code": 404,
            "message": f"{path} not found",
        }
    )


def empty_list() -> bytes:
    return dumps(
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": f"{KIND}List", "metadata": {}, "items": []}
    )


async def serve(args: argparse.Namespace) -> None:
    built = time.monotonic()
    dataset = Dataset(
        listed=args.list,
        streamed=args.stream,
        handled=args.handled,
        added_only=args.added_only,
        paced=args.rate > 0,
    )
    built = time.monotonic() - built
    server = Server(dataset, rate=args.rate, gate=args.gate)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(
        lambda: Connection(server), host=args.host, port=args.port, backlog=1024
    )
    port = listener.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ready = {
        "url": f"http://{args.host}:{port}",
        "pid": os.getpid(),
        "listed": args.list,
        "streamed": args.stream,
        "stream_bytes": len(dataset.stream_bytes),
        "object_size": dataset.object_size,
        "build_seconds": round(built, 3),
    }
    print(json.dumps(ready), flush=True)
    async with listener:
        await stop.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--list", type=int, default=0, help="objects returned by the list")
    parser.add_argument("--stream", type=int, default=0, help="events in the watch stream")
    parser.add_argument(
        "--handled", choices=FRAMEWORKS, help="listed objects look handled by this framework"
    )
    parser.add_argument("--added-only", action="store_true", help="stream ADDED events only")
    parser.add_argument("--rate", type=float, default=0.0, help="events/s (0: unpaced)")
    parser.add_argument("--gate", action="store_true", help="hold streams until released")
    args = parser.parse_args(argv)
    for name in ("list", "stream"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must not be negative")
    if args.rate < 0:
        parser.error("--rate must not be negative")
    return args


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


# --------------------------------------------------------------------------- the client side


class StreamServer:
    """Run the stream server in a subprocess; a context manager (stdlib only).

    Entering starts the process and waits (up to ``startup_timeout`` seconds) for its ready
    line; leaving sends SIGTERM and waits for it to exit (then kills it after 5 seconds).
    """

    def __init__(
        self,
        *,
        listed: int = 0,
        stream: int = 0,
        handled: str | None = None,
        added_only: bool = False,
        rate: float = 0.0,
        gate: bool = False,
        python: str = sys.executable,
        startup_timeout: float = 120.0,
    ) -> None:
        self.argv = [python, str(Path(__file__).resolve()), "--port", "0"]
        self.argv += ["--list", str(listed), "--stream", str(stream), "--rate", str(rate)]
        if handled:
            self.argv += ["--handled", handled]
        if added_only:
            self.argv.append("--added-only")
        if gate:
            self.argv.append("--gate")
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    def __enter__(self) -> StreamServer:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        # The ready line comes after the dataset is built; a dead process gives EOF.
        line = self.process.stdout.readline()
        if not line:
            self.__exit__(None, None, None)
            raise RuntimeError("the stream server exited before it was ready")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def pid(self) -> int:
        return int(self.info["pid"])

    def _call(self, path: str, method: str = "GET") -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._call("/_bench/stats")

    def release(self) -> dict[str, Any]:
        return self._call("/_bench/release", method="POST")

    def wait_for_watchers(self, count: int = 1, *, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``count`` watches are open (polling the stats, bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["open_watches"] >= count:
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {count} watch(es) opened within {timeout}s: {stats}")
            time.sleep(0.02)

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "bench", "cluster": {"server": self.url}}],
            "users": [{"name": "bench", "user": {"token": "bench"}}],
            "contexts": [
                {
                    "name": "bench",
                    "context": {"cluster": "bench", "user": "bench", "namespace": NAMESPACE},
                }
            ],
            "current-context": "bench",
        }

    def write_kubeconfig(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.kubeconfig(), indent=2))  # JSON is valid YAML
        return path


@contextlib.contextmanager
def stream_server(**kwargs: Any) -> Iterator[StreamServer]:
    """Functional spelling of :class:`StreamServer`."""
    with StreamServer(**kwargs) as server:
        yield server


if __name__ == "__main__":
    main()
