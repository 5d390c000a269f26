"""CPU per raw watch event through trikopf's whole in-process path, without the operator around it.

    python benchmarks/bench_raw_path.py [-n 50000] [--repeat 3] [--backend trio|asyncio] [--profile]
                                        [--gc] [--steps] [--read-size BYTES]

A stream server (``streamserver.py``, its own process) pre-generates N events of ~1.5 KB.
This process runs what ``python -m trikopf`` runs for a resource with only ``on.event``
handlers: :func:`trikopf.reactor.watching.serve_watch` with a real :class:`ApiClient` into a
:class:`RawDispatcher` calling :func:`trikopf.processing.prepare_raw_handler`'s ``handle`` for
one ``async def count(**_)`` handler. The clock is ``time.process_time()`` of this process
(the server's CPU is not in it), from the release of the stream to the N-th handler call, so
the figure hardly depends on the machine's load. ``--profile`` prints cProfile's top
functions for one run (slower; for where, not how much). ``--gc`` reports the collector's
pauses; ``--steps`` (Trio) the longest run steps of each task in CPU time (``thread_time``, so
other processes do not lengthen them): a step is as long as the event loop stalls for every
other task, the operator's own share of the latency tail. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _stdlib_profiler() -> Any:
    # benchmarks/profile.py shadows the stdlib's ``profile``, which cProfile imports.
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
    sys.modules.pop("profile", None)
    try:
        import cProfile
        import pstats
    finally:
        sys.path[:] = saved
    return cProfile, pstats


cProfile, pstats = _stdlib_profiler()
sys.path.insert(0, str(HERE))

from streamserver import StreamServer  # noqa: E402


class GcStats:
    """Collections by generation, and their total and longest pauses (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        pause = time.perf_counter() - self._started
        self.counts[generation] += 1
        self.total[generation] += pause
        self.longest[generation] = max(self.longest[generation], pause)

    def report(self) -> str:
        return ", ".join(
            f"gen{g}: {self.counts[g]} times (total {self.total[g] * 1e3:.1f} ms, "
            f"longest {self.longest[g] * 1e3:.2f} ms)"
            for g in range(3)
        )


class StepStats:
    """Per task name: run steps, those over 1 ms of CPU, and the longest (a Trio instrument)."""

    def __init__(self) -> None:
        self.steps: dict[str, list[float]] = {}  # name → [steps, over 1 ms, longest]
        self._started = time.thread_time()

    def before_task_step(self, task: Any) -> None:
        self._started = time.thread_time()

    def after_task_step(self, task: Any) -> None:
        took = time.thread_time() - self._started
        entry = self.steps.setdefault(task.name.rsplit(".", 1)[-1], [0, 0, 0.0])
        entry[0] += 1
        entry[1] += took > 0.001
        entry[2] = max(entry[2], took)

    def report(self) -> str:
        return "; ".join(
            f"{name}: {steps:.0f} steps, {long:.0f} over 1 ms, longest {longest * 1e3:.2f} ms"
            for name, (steps, long, longest) in sorted(self.steps.items())
            if steps > 1
        )


def run_once(
    n: int,
    backend: str,
    profile: Any = None,
    gc_stats: GcStats | None = None,
    read_size: int | None = None,
    step_stats: StepStats | None = None,
) -> float:
    import anyio
    import attrs

    import trikopf
    from trikopf._util.collector import tune_garbage_collector
    from trikopf.client import ClientSettings, ConnectionInfo, open_client
    from trikopf.processing import prepare_raw_handler
    from trikopf.reactor.raw import RawDispatcher
    from trikopf.registry import OperatorRegistry
    from trikopf.settings import OperatorSettings
    from trikopf.structs import Resource

    resource = Resource(
        group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample", namespaced=True
    )
    registry = OperatorRegistry()
    state: dict[str, Any] = {"count": 0, "cpu": 0.0}

    @trikopf.on.event("kopfexamples.kopf.dev", registry=registry)
    async def count(**_: Any) -> None:
        state["count"] += 1
        if state["count"] == n:
            state["cpu"] = time.process_time()
            state["done"].set()

    settings = OperatorSettings()
    with StreamServer(stream=n, gate=True) as server:

        async def main() -> None:
            from trikopf.reactor.watching import serve_watch

            state["done"] = anyio.Event()
            client_settings = ClientSettings(rate_limit=float("inf"))
            if read_size is not None:
                client_settings = attrs.evolve(client_settings, watch_read_size=read_size)
            async with open_client(
                ConnectionInfo(server=server.url), settings=client_settings
            ) as client:
                handle = prepare_raw_handler(
                    registry=registry, settings=settings, resource=resource, client=client
                )
                async with anyio.create_task_group() as tg:
                    dispatcher = RawDispatcher(tg, handle, name="bench")
                    await tg.start(
                        lambda task_status: serve_watch(
                            client,
                            resource,
                            None,
                            supervisor=dispatcher,
                            settings=settings.watching,
                            task_status=task_status,
                        )
                    )
                    await anyio.to_thread.run_sync(server.wait_for_watchers, 1)
                    tune_garbage_collector()
                    if gc_stats is not None:
                        gc.callbacks.append(gc_stats.callback)
                    if step_stats is not None:
                        import trio

                        trio.lowlevel.add_instrument(step_stats)
                    if profile is not None:
                        profile.enable()
                    state["start"] = time.process_time()
                    await anyio.to_thread.run_sync(server.release)
                    with anyio.fail_after(60 + n / 100):
                        await state["done"].wait()
                    if profile is not None:
                        profile.disable()
                    if gc_stats is not None:
                        gc.callbacks.remove(gc_stats.callback)
                    if step_stats is not None:
                        trio.lowlevel.remove_instrument(step_stats)
                    tg.cancel_scope.cancel()

        anyio.run(main, backend=backend)
    # The release call's thread is idle while the stream is handled; its CPU is negligible.
    return (state["cpu"] - state["start"]) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--gc", action="store_true", help="report the collector's pauses")
    parser.add_argument("--read-size", type=int, default=None, help="bytes per receive")
    parser.add_argument("--steps", action="store_true", help="the longest run steps (Trio)")
    args = parser.parse_args()
    if args.steps and args.backend != "trio":
        parser.error("--steps needs --backend trio")
    if args.profile:
        prof = cProfile.Profile()
        run_once(args.n, args.backend, prof, read_size=args.read_size)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    runs = []
    for _ in range(args.repeat):
        stats = GcStats() if args.gc else None
        steps = StepStats() if args.steps else None
        runs.append(
            run_once(
                args.n, args.backend, gc_stats=stats, read_size=args.read_size, step_stats=steps
            )
        )
        print(f"{runs[-1]:.2f} µs CPU/event", flush=True)
        if stats is not None:
            print(f"  collector: {stats.report()}", flush=True)
        if steps is not None:
            print(f"  steps: {steps.report()}", flush=True)
    print(
        f"best {min(runs):.2f}, median {statistics.median(runs):.2f} µs CPU/event "
        f"(N={args.n}, {args.backend}, {threading.active_count()} threads)"
    )


if __name__ == "__main__":
    main()
