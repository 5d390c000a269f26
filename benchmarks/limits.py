"""The limit: the same watch stream read with no framework at all, one reader per process.

    python benchmarks/limits.py --url http://127.0.0.1:PORT --events 50000 --reader socket --json orjson

prints one JSON line ``{"reader": ..., "json": ..., "events": N, "seconds": S, "rate": N/S,
"cpu_seconds": C}`` (C: this process's CPU time over the same span).
The clock starts just before the watch request is sent and stops when the N-th event has been
parsed into a dict (or, for lightkube, into its resource object). Readers:

- ``httpx-lines``: httpx ``AsyncClient.stream`` + ``aiter_lines()`` (asyncio).
- ``httpx-raw``: httpx ``aiter_raw()`` (chunked framing already removed) + a line splitter.
- ``socket``: a blocking socket, our own HTTP/1.1 chunked-body parser; one event per chunk.
- ``socket-noparse``: the socket reader that only counts chunks: the server's delivery rate.
- ``lightkube``: lightkube's async client ``watch()`` over a generic resource (``--json`` is
  ignored: it parses with the stdlib).
- ``socket-patch``: not a watch: N merge-patches, one after another on one keep-alive socket,
  each of a different object of the stream; the server's own patch rate (it applies each patch,
  stores the object and echoes it to open watches), for comparison with ``create``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

PATH = "/apis/kopf.dev/v1/kopfexamples"
READERS = ("httpx-lines", "httpx-raw", "socket", "socket-noparse", "lightkube", "socket-patch")


def json_loads(name: str) -> Callable[[bytes | str], Any]:
    if name == "orjson":
        import orjson

        return orjson.loads
    return json.loads


async def read_httpx_lines(url: str, events: int, loads: Callable[[Any], Any]) -> int:
    import httpx

    count = 0
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        params = {"watch": "true", "resourceVersion": "0"}
        async with client.stream("GET", PATH, params=params) as response:
            async for line in response.aiter_lines():
                if line:
                    loads(line)
                    count += 1
                    if count >= events:
                        break
    return count


async def read_httpx_raw(url: str, events: int, loads: Callable[[Any], Any]) -> int:
    import httpx

    count = 0
    tail = b""
    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        params = {"watch": "true", "resourceVersion": "0"}
        async with client.stream("GET", PATH, params=params) as response:
            async for data in response.aiter_raw():
                if tail:
                    data, tail = tail + data, b""
                # h11 hands over one HTTP chunk at a time, so the common case is one event
                # that ends exactly at the end of the data: parse it without splitting.
                if data.endswith(b"\n") and data.find(b"\n") == len(data) - 1:
                    loads(data)
                    count += 1
                else:
                    lines = data.split(b"\n")
                    tail = lines.pop()
                    for line in lines:
                        if line:
                            loads(line)
                            count += 1
                if count >= events:
                    break
    return count


def read_socket(url: str, events: int, loads: Callable[[Any], Any] | None) -> int:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    with socket.create_connection((host, port)) as sock:
        sock.sendall(
            f"GET {PATH}?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: {host}\r\n"
            "Accept: application/json\r\n\r\n".encode()
        )
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"watch failed: {head!r}")
        count = 0
        pos = 0
        while count < events:
            # One chunk = "<hex size>\r\n<payload>\r\n"; parse every complete one in the buffer.
            while True:
                eol = buffer.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = int(buffer[pos:eol], 16)
                end = eol + 2 + size
                if end + 2 > len(buffer):
                    break
                if loads is not None:
                    loads(buffer[eol + 2 : end])
                count += 1
                pos = end + 2
            data = sock.recv(1 << 20) if count < events else b""
            if count < events and not data:
                break
            buffer = buffer[pos:] + data
            pos = 0
        return count


def patch_socket(url: str, events: int) -> int:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps({"status": {"create_fn": {"handled": True}}}).encode()
    count = 0
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        for index in range(events):
            # The stream's objects are named example-<index> (see streamserver.make_object).
            path = f"/apis/kopf.dev/v1/namespaces/bench/kopfexamples/example-{index:07d}"
            sock.sendall(
                f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: application/merge-patch+json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError(f"patch failed: {head!r}")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(buffer) < length:
                buffer += sock.recv(65536)
            buffer = buffer[length:]
            count += 1
    return count


async def read_lightkube(url: str, events: int) -> int:
    import lightkube
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.generic_resource import create_namespaced_resource

    resource = create_namespaced_resource("kopf.dev", "v1", "KopfExample", "kopfexamples")
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "bench", "cluster": {"server": url}}],
            "users": [{"name": "bench", "user": {"token": "bench"}}],
            "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            "current-context": "bench",
        }
    )
    client = lightkube.AsyncClient(config=config, timeout=None)  # type: ignore[arg-type]
    count = 0
    try:
        stream = client.watch(resource, namespace=lightkube.ALL_NS, resource_version="0")
        async for _op, _obj in stream:
            count += 1
            if count >= events:
                break
    finally:
        await client.close()
    return count


def measure(reader: str, json_name: str, url: str, events: int) -> dict[str, Any]:
    loads = json_loads(json_name)
    started = time.perf_counter()
    cpu_started = time.process_time()
    if reader == "httpx-lines":
        count = asyncio.run(read_httpx_lines(url, events, loads))
    elif reader == "httpx-raw":
        count = asyncio.run(read_httpx_raw(url, events, loads))
    elif reader == "socket":
        count = read_socket(url, events, loads)
    elif reader == "socket-noparse":
        count = read_socket(url, events, None)
    elif reader == "socket-patch":
        count = patch_socket(url, events)
        json_name = "none"
    elif reader == "lightkube":
        count = asyncio.run(read_lightkube(url, events))
        json_name = "stdlib"
    else:
        raise ValueError(f"unknown reader {reader!r}; choose from {', '.join(READERS)}")
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if count < events:
        raise RuntimeError(f"{reader}: the stream ended after {count} of {events} events")
    return {
        "reader": reader,
        "json": json_name,
        "events": count,
        "seconds": seconds,
        "rate": count / seconds,
        "cpu_seconds": cpu,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Read a watch stream with no framework.")
    parser.add_argument("--url", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--reader", choices=READERS, required=True)
    parser.add_argument("--json", choices=("stdlib", "orjson"), default="stdlib")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.reader, args.json, args.url, args.events)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
