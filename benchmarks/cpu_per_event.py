"""CPU time of the operator process per raw watch event (load-independent, unlike events/s).

Runs the stream server in its own process and an operator with the ``event`` workload (one
async ``on.event`` handler that counts), releases N events and reads the operator's utime +
stime from ``/proc/<pid>/stat`` just before the release and when its handler reports the last
call. Prints one JSON line per run and the median::

    python benchmarks/cpu_per_event.py -n 20000 --repeat 3
    python benchmarks/cpu_per_event.py -n 20000 --framework kopf

It asserts nothing; the figure is for comparing trees in the same sitting.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import FRAMEWORKS, _watch_ready, run_operator
from streamserver import StreamServer

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def measure(framework: str, n: int) -> dict[str, float]:
    with (
        StreamServer(stream=n, gate=True) as server,
        run_operator(FRAMEWORKS[framework], "event", server=server, expect=n) as operator,
    ):
        _watch_ready(server)
        pid = operator.process.pid
        before = cpu_seconds(pid)
        released = server.release()["released_at"]
        done = operator.wait_for("done", timeout=60 + n / 50)
        after = cpu_seconds(pid)
        seconds = done["t"] - released
    return {
        "cpu_us_per_event": (after - before) / n * 1e6,
        "events_per_s": n / seconds,
        "events_per_cpu_s": n / (after - before),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--framework", default="trikopf", choices=sorted(FRAMEWORKS))
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        run = measure(args.framework, args.n)
        runs.append(run)
        print(json.dumps({k: round(v, 2) for k, v in run.items()}), flush=True)
    cpu = statistics.median(r["cpu_us_per_event"] for r in runs)
    rate = statistics.median(r["events_per_s"] for r in runs)
    print(f"median: {cpu:.2f} µs CPU/event, {rate:,.0f} events/s (N={args.n})")


if __name__ == "__main__":
    main()
