"""Watch throughput of trikopf's client beside the references, measured in the same run.

    python benchmarks/bench_client_watch.py [--events 50000] [--repeats 3] [--json orjson|json]

A stream server (``benchmarks/streamserver.py``, its own process) pre-generates N watch events
of ~1.5 KB each, one per HTTP chunk, on plain HTTP over loopback. Every reader below opens one
watch from resourceVersion 0 and parses N events into dicts with the same JSON library; the
clock runs from just before the request to the N-th parsed event. Readers:

- ``trikopf/trio`` and ``trikopf/asyncio``: ``ApiClient.watch`` yielding ``WatchEvent``.
- ``httpx aiter_lines``: bare httpx, ``response.aiter_lines()``, one parse per line.
- ``httpx raw+split``: bare httpx, ``response.aiter_raw()`` and a bytes line splitter.
- ``socket``: a blocking socket with a minimal chunked-body parser: the practical limit.

Prints the median, best and worst events/s of each and the ratios of the client to each
reference (medians, and best-of, which suffers least from other load on the machine). Asserts nothing: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streamserver import StreamServer

PATH = "/apis/kopf.dev/v1/kopfexamples"
PARAMS = {"watch": "true", "resourceVersion": "0"}

Loads = Callable[[Any], Any]


def json_loads(name: str) -> Loads:
    if name == "orjson":
        import orjson

        return orjson.loads  # type: ignore[no-any-return]
    return json.loads


# --- trikopf --------------------------------------------------------------------------------


async def read_trikopf(url: str, events: int) -> float:
    from trikopf.client import ClientSettings, ConnectionInfo, open_client
    from trikopf.structs import Resource

    resource = Resource(group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample")
    settings = ClientSettings(rate_limit=float("inf"))
    async with open_client(ConnectionInfo(server=url), settings=settings) as client:
        count = 0
        started = time.perf_counter()
        async with client.watch(resource, resource_version="0", allow_bookmarks=False) as stream:
            async for _event in stream:
                count += 1
                if count >= events:
                    break
        return time.perf_counter() - started


# --- bare httpx -----------------------------------------------------------------------------


async def read_httpx_lines(url: str, events: int, loads: Loads) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        count = 0
        started = time.perf_counter()
        async with client.stream("GET", PATH, params=PARAMS) as response:
            async for line in response.aiter_lines():
                if line:
                    loads(line)
                    count += 1
                    if count >= events:
                        break
        return time.perf_counter() - started


async def read_httpx_raw(url: str, events: int, loads: Loads) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=None) as client:
        count = 0
        started = time.perf_counter()
        rest = b""
        async with client.stream("GET", PATH, params=PARAMS) as response:
            async for data in response.aiter_raw():
                if rest:
                    data = rest + data
                start = 0
                while True:
                    end = data.find(b"\n", start)
                    if end < 0:
                        rest = data[start:]
                        break
                    loads(data[start:end])
                    count += 1
                    start = end + 1
                    if count >= events:
                        return time.perf_counter() - started
        return time.perf_counter() - started


# --- plain socket ---------------------------------------------------------------------------


def read_socket(url: str, events: int, loads: Loads, recv_size: int = 65536) -> float:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode(PARAMS)
    started = time.perf_counter()
    sock = socket.create_connection((parts.hostname, parts.port))
    try:
        request = f"GET {PATH}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: application/json\r\n\r\n"
        sock.sendall(request.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        buf = buf[buf.index(b"\r\n\r\n") + 4 :]
        count = 0
        pos = 0
        while True:
            # One event per chunk: "<hex size>\r\n<event>\r\n".
            end = buf.find(b"\r\n", pos)
            if end >= 0:
                size = int(buf[pos:end], 16)
                start = end + 2
                if len(buf) >= start + size + 2:
                    loads(buf[start : start + size])
                    count += 1
                    if count >= events:
                        return time.perf_counter() - started
                    pos = start + size + 2
                    continue
            data = sock.recv(recv_size)
            if not data:
                raise RuntimeError("the stream server closed the watch early")
            buf = buf[pos:] + data
            pos = 0
    finally:
        sock.close()


# --- the run --------------------------------------------------------------------------------


def measure(name: str, url: str, events: int, loads: Loads) -> float:
    if name == "trikopf/trio":
        import trio

        return trio.run(read_trikopf, url, events)
    if name == "trikopf/asyncio":
        return asyncio.run(read_trikopf(url, events))
    if name == "httpx aiter_lines":
        return asyncio.run(read_httpx_lines(url, events, loads))
    if name == "httpx raw+split":
        return asyncio.run(read_httpx_raw(url, events, loads))
    if name == "socket":
        return read_socket(url, events, loads)
    raise ValueError(name)


READERS = ["trikopf/trio", "trikopf/asyncio", "httpx aiter_lines", "httpx raw+split", "socket"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", choices=["orjson", "json"], default="orjson")
    parser.add_argument("--output", type=Path, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    from trikopf.client import jsonlib

    loads = json_loads(args.json)
    if args.json != jsonlib.BACKEND:
        # The client parses with orjson when installed; match the references' library.
        jsonlib.loads = loads
    rates: dict[str, list[float]] = {name: [] for name in READERS}
    with StreamServer(stream=args.events, added_only=True) as server:
        for _ in range(args.repeats):
            for name in READERS:  # interleaved, so that drifts in load hit every reader
                seconds = measure(name, server.url, args.events, loads)
                rates[name].append(args.events / seconds)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    best = {name: max(values) for name, values in rates.items()}

    print(
        f"watch throughput: {args.events} events of ~1.5 KB, one per HTTP chunk, "
        f"JSON: {args.json}, {args.repeats} runs each (interleaved)"
    )
    width = max(len(n) for n in READERS)
    print(f"  {'reader':<{width}}  {'median':>9}  {'best':>9}  {'worst':>9}   events/s")
    for name in READERS:
        print(
            f"  {name:<{width}}  {medians[name]:>9,.0f}  {best[name]:>9,.0f}  "
            f"{min(rates[name]):>9,.0f}"
        )
    client = medians["trikopf/trio"]
    print("ratios, trikopf/trio to each reference (median; best-of in brackets):")
    for name in READERS[1:]:
        print(
            f"  client / {name:<{width}}  {client / medians[name]:.2f}"
            f"  ({best['trikopf/trio'] / best[name]:.2f})"
        )
    result = {
        "events": args.events,
        "json": args.json,
        "repeats": args.repeats,
        "rates": rates,
        "medians": medians,
        "best": best,
        "client_vs_socket": client / medians["socket"],
        "client_vs_httpx_lines": client / medians["httpx aiter_lines"],
    }
    if args.output:
        args.output.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
