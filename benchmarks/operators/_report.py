"""What the benchmark operators tell the harness, through a pipe (``BENCH_REPORT_FD``).

Both frameworks' operator files use this one module, so that they do exactly the same work per
handler call: count the call, and when the expected number is reached write one JSON line with
``time.monotonic()`` (comparable with other processes on Linux). Latency samples are written to
the file ``BENCH_SAMPLES`` when the last one is in, never while measuring.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

WORKLOAD = os.environ.get("BENCH_WORKLOAD", "event")
EXPECT = int(os.environ.get("BENCH_EXPECT", "0"))
SENT_AT_KEY = "bench.trikopf.dev/sent-at"
_FD = int(os.environ.get("BENCH_REPORT_FD", "-1"))
_SAMPLES_PATH = os.environ.get("BENCH_SAMPLES", "")

# An experiment, off by default: BENCH_GC_THRESHOLD="100000,50,1000" sets the cyclic garbage
# collector's thresholds in the operator process, to measure what the collector costs.
if os.environ.get("BENCH_GC_THRESHOLD"):
    gc.set_threshold(*(int(x) for x in os.environ["BENCH_GC_THRESHOLD"].split(",")))


class Reporter:
    def __init__(self) -> None:
        self.count = 0
        self.samples: list[float] = []

    def send(self, kind: str, **fields: Any) -> None:
        if _FD >= 0:
            line = json.dumps({"kind": kind, "t": time.monotonic(), **fields}) + "\n"
            os.write(_FD, line.encode())

    def hit(self) -> None:
        """Count one handler call; report the first one and the last expected one."""
        self.count += 1
        if self.count == 1:
            self.send("first")
        if self.count == EXPECT:
            self.send("done", count=self.count)

    def latency(self, body: Mapping[str, Any]) -> None:
        """Record one event's delay from the server's send time to this handler's start."""
        now = time.monotonic()
        sent = body.get("metadata", {}).get("annotations", {}).get(SENT_AT_KEY)
        if sent is None:
            return
        self.samples.append(now - float(sent))
        if len(self.samples) == 1:
            self.send("first")
        if len(self.samples) == EXPECT:
            if _SAMPLES_PATH:
                with open(_SAMPLES_PATH, "w") as file:
                    json.dump(self.samples, file)
            self.send("done", count=len(self.samples))


reporter = Reporter()


def _census(signum: int, frame: object) -> None:
    """Write the live objects by type (count) to ``BENCH_CENSUS`` (a debugging aid)."""
    if os.environ.get("BENCH_CENSUS_COLLECT"):
        gc.collect()
    objects = gc.get_objects()
    counts = collections.Counter(type(o).__qualname__ for o in objects)
    chains = []
    wanted = os.environ.get("BENCH_CENSUS_REFS")
    if wanted:
        # Who holds one object of that type: its referrers, three levels up.
        target = next((o for o in objects if type(o).__qualname__ == wanted), None)
        level = [target] if target is not None else []
        for _ in range(3):
            up = [
                r for o in level for r in gc.get_referrers(o) if r is not objects and r is not level
            ]
            chains.append([f"{type(r).__module__}.{type(r).__qualname__}" for r in up][:8])
            level = up[:3]
    # What the per-object states that are still kept hold (their reprs, counted).
    states = collections.Counter(
        f"{o!r} memo={type(o.memo).__name__}" for o in objects if type(o).__name__ == "ObjectState"
    )
    del objects
    with open(os.environ["BENCH_CENSUS"], "w") as file:
        json.dump(
            {
                "counts": counts.most_common(40),
                "referrers": chains,
                "states": states.most_common(5),
            },
            file,
            indent=0,
        )


# Also an experiment, off by default: with BENCH_CENSUS=path, SIGUSR1 writes a census of the
# live objects, to see what an operator keeps per object.
if os.environ.get("BENCH_CENSUS"):
    signal.signal(signal.SIGUSR1, _census)


_first_pools: set[int] = set()


def _pools() -> dict[int, object]:
    """The small (pymalloc-sized) objects reachable from the collector's: address to object."""
    import sys

    found: dict[int, object] = {}
    for obj in gc.get_objects():
        for o in (obj, *gc.get_referents(obj)):
            if sys.getsizeof(o, 1000) <= 512:
                found[id(o)] = o
    return found


def _mallocstats(signum: int, frame: object) -> None:
    """Append CPython's allocator statistics (arenas, pools, blocks) to ``BENCH_MALLOCSTATS``."""
    import sys

    path = os.environ["BENCH_MALLOCSTATS"]
    if os.environ.get("BENCH_PRUNE_DEADLINES"):  # an experiment: Trio's stale deadline entries
        from trio._core import _run

        runner = _run.GLOBAL_RUN_CONTEXT.runner
        before = len(runner.deadlines._heap)
        runner.deadlines._prune()
        gc.collect()
        with open(path, "a") as file:
            file.write(f"pruned {before} -> {len(runner.deadlines._heap)}\n")
    pools = _pools()
    with open(path, "a") as file:
        file.write(f"=== {time.monotonic():.3f} blocks={sys.getallocatedblocks()}\n")
        file.write(
            f"gc counts {gc.get_count()} stats {[st['collections'] for st in gc.get_stats()]}\n"
        )
        if _first_pools:
            # The small objects that live in pools that did not exist at the first look.
            new = collections.Counter()
            samples: dict[str, str] = {}
            for addr, obj in pools.items():
                if addr >> 14 not in _first_pools:
                    name = type(obj).__qualname__
                    new[name] += 1
                    if name not in samples:
                        samples[name] = repr(obj)[:150]
            file.write(f"new pools: {len({a >> 14 for a in pools} - _first_pools)}\n")
            for name, count in new.most_common(25):
                file.write(f"  {count:7d} {name}  {samples[name]}\n")
        else:
            _first_pools.update(a >> 14 for a in pools)
        file.flush()
        saved = os.dup(2)
        try:
            os.dup2(file.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


# A third one, off by default: with BENCH_MALLOCSTATS=path, SIGWINCH appends the allocator's
# arena statistics there, to see whether the arenas of a burst go back to the system.
if os.environ.get("BENCH_MALLOCSTATS"):
    signal.signal(signal.SIGWINCH, _mallocstats)
