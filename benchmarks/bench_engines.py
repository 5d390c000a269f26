"""What daemons and metrics cost, beside bare baselines measured in the same run.

    python benchmarks/bench_engines.py [--objects 5000] [--events 200000] [--repeats 3]

Two workloads, without the network:

- ``daemons``: N objects, one async daemon each (``await stopped.wait()``), started through the
  :class:`~trikopf.engines.BackgroundEngine` in per-object task groups, then all stopped at
  once (``shutdown()``, as when the operator exits). Reported: start time per daemon, memory per
  daemon (tracemalloc), and the time until every daemon has stopped. Baseline: N bare tasks that
  wait on an event in the same per-object task groups.
- ``metrics``: events dispatched through a :class:`~trikopf.reactor.objects.ResourceSupervisor`
  whose rounds do nothing, once without metrics and once with :class:`OperatorMetrics`
  installed (a watch-event counter per event, the event-to-round latency histogram per round).
  Reported: events/s of both and their ratio.

Prints medians (min-max over repeats). Asserts nothing: figures vary with the machine and load.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.abc

import trikopf
from trikopf._util.instruments import current_instruments, set_instruments
from trikopf.engines import BackgroundEngine
from trikopf.engines.metrics import OperatorMetrics
from trikopf.reactor.objects import ObjectScope, ResourceSupervisor
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource, WatchEvent

RESOURCE = Resource(group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample")


class NoApi:
    """Daemons here never write; a PATCH would be a bug of the benchmark."""

    async def patch(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no PATCH expected")

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no GET expected")


class GroupScope:
    """An object scope over a task group (what the reactor's ObjectScope provides)."""

    def __init__(self, tg: anyio.abc.TaskGroup) -> None:
        self.tg = tg

    def start_soon(
        self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None
    ) -> None:
        self.tg.start_soon(fn, *args, name=name)


def body(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": f"obj-{i}", "namespace": "default", "uid": f"uid-{i}"},
        "spec": {"size": i},
    }


async def daemons_once(n: int, *, trace: bool) -> dict[str, float]:
    registry = trikopf.OperatorRegistry()
    started = 0
    everyone = anyio.Event()

    @trikopf.daemon("kopfexamples", registry=registry)
    async def waiter(stopped: trikopf.DaemonStopped, **_: Any) -> None:
        nonlocal started
        started += 1
        if started == n:
            everyone.set()
        await stopped.wait()

    settings = OperatorSettings()
    settings.posting.enabled = False
    engine = BackgroundEngine(registry=registry, settings=settings, client=NoApi())
    events = [WatchEvent(type="ADDED", object=body(i)) for i in range(n)]
    if trace:  # memory is measured in a pass of its own: tracing slows everything down
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    async with anyio.create_task_group() as outer:
        for event in events:
            outer.start_soon(_object_with_daemons, engine, event)
        await everyone.wait()
        t1 = time.perf_counter()
        memory = tracemalloc.get_traced_memory()[0] - before
        engine.shutdown()
    t2 = time.perf_counter()
    if trace:
        tracemalloc.stop()
    return {"start_us": (t1 - t0) / n * 1e6, "bytes": memory / n, "stop_s": t2 - t1}


async def _object_with_daemons(engine: BackgroundEngine, event: WatchEvent) -> None:
    """One object's task group, with the daemons the engine starts for the event."""
    async with anyio.create_task_group() as tg:
        await engine.after_round(resource=RESOURCE, event=event, state=None, scope=GroupScope(tg))


async def _object_with(fn: Callable[[], Awaitable[None]]) -> None:
    """One object's task group with one bare task."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(fn)


async def bare_once(n: int, *, trace: bool) -> dict[str, float]:
    release = anyio.Event()
    started = 0
    everyone = anyio.Event()

    async def waiter() -> None:
        nonlocal started
        started += 1
        if started == n:
            everyone.set()
        await release.wait()

    if trace:  # memory is measured in a pass of its own: tracing slows everything down
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    async with anyio.create_task_group() as outer:
        for _ in range(n):
            outer.start_soon(_object_with, waiter)
        await everyone.wait()
        t1 = time.perf_counter()
        memory = tracemalloc.get_traced_memory()[0] - before
        release.set()
    t2 = time.perf_counter()
    if trace:
        tracemalloc.stop()
    return {"start_us": (t1 - t0) / n * 1e6, "bytes": memory / n, "stop_s": t2 - t1}


async def dispatch_once(events: int, objects: int, *, metrics: bool) -> float:
    token = set_instruments(OperatorMetrics() if metrics else None)
    try:
        rounds = 0
        done = anyio.Event()

        async def process(event: WatchEvent, state: Any, scope: ObjectScope) -> float | None:
            nonlocal rounds
            rounds += 1
            if rounds >= objects and seen == events:
                done.set()
            return None

        instruments = current_instruments()
        count = instruments.watch_events("bench") if instruments is not None else None
        bodies = [body(i) for i in range(objects)]
        stream = [WatchEvent(type="MODIFIED", object=bodies[i % objects]) for i in range(events)]
        seen = 0
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            supervisor: ResourceSupervisor[Any] = ResourceSupervisor(
                tg, process, dict, idle_timeout=60.0, batch_window=0.0
            )
            for event in stream:
                seen += 1
                if count is not None:
                    count()
                supervisor.dispatch(event)
                if seen % 1000 == 0:
                    await anyio.sleep(0)  # let the workers run, as a real watcher would
            supervisor.stop()
        return events / (time.perf_counter() - t0)
    finally:
        token.var.reset(token)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):10.1f}  ({min(values):.1f}-{max(values):.1f})"


async def main(args: argparse.Namespace) -> None:
    n = args.objects
    runs = {"daemons": [], "bare": []}  # type: dict[str, list[dict[str, float]]]
    for _ in range(args.repeats):
        runs["bare"].append(await bare_once(n, trace=False))
        runs["daemons"].append(await daemons_once(n, trace=False))
    bare_memory = (await bare_once(n, trace=True))["bytes"]
    daemon_memory = (await daemons_once(n, trace=True))["bytes"]
    for run in runs["bare"]:
        run["bytes"] = bare_memory
    for run in runs["daemons"]:
        run["bytes"] = daemon_memory
    print(f"daemons: {n} objects, {args.repeats} repeats (median, min-max)")
    for key, label in (("start_us", "start per task, us"), ("bytes", "memory per task, B"),
                       ("stop_s", "stop all, s")):  # fmt: skip
        bare = [r[key] for r in runs["bare"]]
        ours = [r[key] for r in runs["daemons"]]
        ratio = statistics.median(ours) / max(statistics.median(bare), 1e-9)
        print(f"  {label:22} daemon {spread(ours)}   bare task {spread(bare)}   x{ratio:.1f}")

    plain: list[float] = []
    metered: list[float] = []
    for _ in range(args.repeats):
        plain.append(await dispatch_once(args.events, n, metrics=False))
        metered.append(await dispatch_once(args.events, n, metrics=True))
    ratio = statistics.median(metered) / statistics.median(plain)
    print(f"metrics: {args.events} events over {n} objects through the supervisor")
    print(f"  events/s without metrics {spread(plain)}")
    print(f"  events/s with metrics    {spread(metered)}   ratio {ratio:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    arguments = parser.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
