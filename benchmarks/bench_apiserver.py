"""Throughput of the embedded API server: watch events/s and create/patch requests/s.

Prints figures only; asserts nothing. Run: ``python benchmarks/bench_apiserver.py [--events N]``.

- live watch: one watch stream open while objects of ~1.5 KB are written into the store
  in the same process; events/s counted by the reader as they arrive (line by line).
- replayed watch: the same number of events already in the history, read from an old
  resourceVersion (the server sends retained events in big chunks).
- create / patch over HTTP with keep-alive, from httpx, one and several connections.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio
import anyio.abc
import httpx

from trikopf.apiserver import ApiServer, open_apiserver
from trikopf.apiserver.jsonio import dumps

CM = "/api/v1/namespaces/default/configmaps"


def _body(i: int) -> dict[str, Any]:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"obj-{i}",
            "labels": {"app": "bench", "index": str(i % 100)},
            "annotations": {"bench/note": "x" * 200},
        },
        "data": {f"key-{k}": "v" * 90 for k in range(10)},
    }
    return body


class _Reader:
    """Counts watch events on a raw connection (chunked, one JSON object per line)."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.events = 0
        self.bytes = 0
        self._last = b""

    async def read_until(self, count: int) -> None:
        # Counting "}\n" is enough: JSON lines contain no raw newline. A pair may be split
        # between two receives.
        while self.events < count:
            data = await self.stream.receive(1 << 20)
            self.bytes += len(data)
            self.events += data.count(b"}\n") + (self._last == b"}" and data[:1] == b"\n")
            self._last = data[-1:]


async def _open_watch(
    server: ApiServer, resource_version: str
) -> tuple[anyio.abc.ByteStream, _Reader]:
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    request = (
        f"GET {CM}?watch=1&resourceVersion={resource_version} HTTP/1.1\r\nHost: x\r\n\r\n"
    ).encode()
    await stream.send(request)
    return stream, _Reader(stream)


class _Clock:
    """Wall time and this process's CPU time (the machine may be shared and busy)."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def rates(self, count: int) -> tuple[float, float]:
        wall = time.perf_counter() - self.wall
        cpu = time.process_time() - self.cpu
        return count / wall, count / cpu if cpu > 0 else float("inf")


async def bench_live_watch(events: int) -> tuple[tuple[float, float], int]:
    async with open_apiserver(history_window=events + 10) as server:
        resource = server.resource("configmaps")
        start_rv = str(server.store.rv)
        stream, reader = await _open_watch(server, start_rv)
        bodies = [_body(i) for i in range(events)]
        async with stream, anyio.create_task_group() as tg:
            clock = _Clock()
            tg.start_soon(reader.read_until, events)
            for i, body in enumerate(bodies):
                server.store.create(resource, "default", body, copy=False)  # as from HTTP
                if i % 50 == 0:
                    await anyio.lowlevel.checkpoint()  # let the watcher and the reader run
        rates = clock.rates(events)
        return rates, len(dumps(server.objects("configmaps", "default")[0]))


async def bench_replayed_watch(events: int) -> tuple[float, float]:
    async with open_apiserver(history_window=events + 10) as server:
        resource = server.resource("configmaps")
        start_rv = str(server.store.rv)
        for i in range(events):
            server.store.create(resource, "default", _body(i))
        stream, reader = await _open_watch(server, start_rv)
        async with stream:
            clock = _Clock()
            await reader.read_until(events)
            return clock.rates(events)


async def bench_initial_watch_and_list(events: int) -> tuple[tuple[float, float], float]:
    """A watch from "" over existing objects (ADDED for each), and one full list."""
    async with open_apiserver() as server:
        resource = server.resource("configmaps")
        for i in range(events):
            server.store.create(resource, "default", _body(i), copy=False)
        stream, reader = await _open_watch(server, "")
        async with stream:
            clock = _Clock()
            await reader.read_until(events)
            initial = clock.rates(events)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            started = time.perf_counter()
            response = await client.get(CM)
            elapsed = time.perf_counter() - started
            assert len(response.json()["items"]) == events
        return initial, events / elapsed


async def bench_requests(
    requests: int, connections: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    async with open_apiserver() as server:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(base_url=server.url, limits=limits) as client:
            per_worker = requests // connections

            async def create(worker: int) -> None:
                for i in range(per_worker):
                    response = await client.post(CM, json=_body(worker * per_worker + i))
                    assert response.status_code == 201

            async def patch(worker: int) -> None:
                headers = {"Content-Type": "application/merge-patch+json"}
                for i in range(per_worker):
                    name = f"obj-{worker * per_worker + i}"
                    response = await client.patch(
                        f"{CM}/{name}", json={"metadata": {"labels": {"p": "1"}}}, headers=headers
                    )
                    assert response.status_code == 200

            rates = []
            for job in (create, patch):
                clock = _Clock()
                async with anyio.create_task_group() as tg:
                    for worker in range(connections):
                        tg.start_soon(job, worker)
                rates.append(clock.rates(per_worker * connections))
            return rates[0], rates[1]


async def bench_raw_creates(requests: int) -> tuple[float, float]:
    """Creates over one keep-alive connection from a minimal client: the server's own cost."""
    async with open_apiserver() as server:
        payloads = []
        for i in range(requests):
            body = dumps(_body(i))
            payloads.append(
                b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (CM.encode(), len(body), body)
            )
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            clock = _Clock()
            buffer = b""
            for payload in payloads:
                await stream.send(payload)
                while True:
                    head, sep, rest = buffer.partition(b"\r\n\r\n")
                    if sep:
                        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                        if len(rest) >= length:
                            assert head.startswith(b"HTTP/1.1 201"), head
                            buffer = rest[length:]
                            break
                    buffer += await stream.receive()
            return clock.rates(requests)


def _fmt(rates: tuple[float, float], unit: str) -> str:
    return f"{rates[0]:9.0f} {unit} wall, {rates[1]:9.0f} per CPU-second"


async def main(events: int, requests: int, backend: str) -> None:
    print(f"embedded API server benchmark on {backend} (client and server in one process)")
    live, size = await bench_live_watch(events)
    print(f"  object size: {size} bytes, {events} events per watch run")
    print(f"  live watch, one stream:      {_fmt(live, 'events/s')}")
    replay = await bench_replayed_watch(events)
    print(f"  replayed watch, one stream:  {_fmt(replay, 'events/s')}")
    initial, listed = await bench_initial_watch_and_list(events)
    print(f"  initial watch events (rv=''):{_fmt(initial, 'events/s')}")
    print(f"  one list of every object:    {listed:9.0f} objects/s wall (incl. httpx parsing)")
    raw = await bench_raw_creates(requests)
    print(f"  create, raw keep-alive client: {_fmt(raw, 'req/s')}")
    for connections in (1, 4):
        create, patch = await bench_requests(requests, connections)
        print(f"  create, {connections} httpx connection(s): {_fmt(create, 'req/s')}")
        print(f"  patch,  {connections} httpx connection(s): {_fmt(patch, 'req/s')}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    args = parser.parse_args()
    anyio.run(main, args.events, args.requests, args.backend, backend=args.backend)
