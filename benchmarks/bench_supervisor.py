"""The object supervisor's own CPU per created object, without the network or the round body.

    python benchmarks/bench_supervisor.py [--objects 20000] [--window 0.1] [--repeats 3]

Dispatches N ADDED events of distinct objects into a :class:`ResourceSupervisor` (on Trio, as
the operator runs it: its tasks in a Trio nursery, ``backlog_limit`` 1,000, the watcher waiting
while it is congested), with a processor that only checkpoints once (where a round would send
its PATCH). Prints the process's CPU time per object from the first dispatch to the last round:
what dispatching, the batch window, the ready line, the workers and the clock cost. The batch
window's wall time is not CPU time, so it does not count. Run it under
``valgrind --tool=callgrind`` at two sizes for instructions per object. Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

import anyio
import trio

from trikopf.reactor.objects import ObjectScope, ResourceSupervisor, open_task_spawner
from trikopf.structs import WatchEvent


def added(i: int) -> WatchEvent:
    meta = {"uid": f"uid-{i}", "name": f"obj-{i}", "namespace": "default", "resourceVersion": "1"}
    return WatchEvent(type="ADDED", object={"metadata": meta})


async def one_run(n: int, window: float) -> float:
    done = trio.Event()
    rounds = 0

    async def process(event: WatchEvent, state: dict[str, Any], scope: ObjectScope) -> None:
        nonlocal rounds
        await trio.lowlevel.checkpoint()  # where the round's PATCH would wait
        rounds += 1
        if rounds == n:
            done.set()

    events = [added(i) for i in range(n)]
    async with anyio.create_task_group() as tg, open_task_spawner(tg) as spawner:
        supervisor = ResourceSupervisor(
            spawner, process, dict, batch_window=window, backlog_limit=1000
        )
        started = time.process_time()
        for first in range(0, n, 100):  # as the watcher hands over one read at a time
            for event in events[first : first + 100]:
                supervisor.dispatch(event)
            await supervisor.wait_uncongested()
            await trio.lowlevel.checkpoint()
        await done.wait()
        used = time.process_time() - started
        supervisor.stop()
        tg.cancel_scope.cancel()
    return used / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--window", type=float, default=0.1, help="the batch window, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gc.disable()  # the operator's tuned collector rarely runs during a burst
    runs = [trio.run(one_run, args.objects, args.window) for _ in range(args.repeats)]
    print(
        f"supervisor CPU per object: {statistics.median(runs):.2f} µs "
        f"(min {min(runs):.2f}, max {max(runs):.2f}; N={args.objects}, window {args.window} s)"
    )


if __name__ == "__main__":
    main()
