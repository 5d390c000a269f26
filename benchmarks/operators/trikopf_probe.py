"""The benchmark operator of ``trikopf_operator.py``, plus a memory probe on SIGUSR2.

Run by ``benchmarks/memory_probe.py`` under ``python -X tracemalloc``: on each SIGUSR2 it
dumps a tracemalloc snapshot and the live objects by type to ``BENCH_PROBE_DIR/<n>.*``.
``BENCH_WORKER_LIMIT=n`` sets ``settings.processing.worker_limit`` (an experiment).
"""

from __future__ import annotations

import collections
import gc
import json
import os
import signal
import sys
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trikopf_operator  # noqa: F401  (registers the workload's handlers)

_DIR = os.environ["BENCH_PROBE_DIR"]

if os.environ.get("BENCH_WORKER_LIMIT"):
    import trikopf.on

    @trikopf.on.startup()
    async def _limit_workers(settings: trikopf.OperatorSettings, **_: object) -> None:
        # An experiment: bound the rounds in flight, to see what a burst's peak costs in RSS.
        settings.processing.worker_limit = int(os.environ["BENCH_WORKER_LIMIT"])


_count = [0]


def _probe(signum: int, frame: object) -> None:
    n = _count[0]
    _count[0] += 1
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.take_snapshot().dump(os.path.join(_DIR, f"{n}.snapshot"))
    counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    with open(os.path.join(_DIR, f"{n}.json"), "w") as file:
        json.dump({"current": current, "peak": peak, "types": dict(counts)}, file)
    tracemalloc.reset_peak()


signal.signal(signal.SIGUSR2, _probe)
