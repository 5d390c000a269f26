"""Where the memory per object goes: tracemalloc and a type census before and after N objects.

``python benchmarks/memory_probe.py idle 10000`` (or ``daemon``) runs the ``memory`` workload's
operator under ``-X tracemalloc`` against the stream server, takes a snapshot before the
objects and one after they are handled and settled, and prints: RSS per object, traced (live)
Python memory per object, the traced peak during the burst, the object types that grew, and
the allocation sites that grew most. A debugging aid: slower than the real workload (tracing
costs), and nothing in it is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402


class _Probe(harness.Trikopf):
    def argv(self, script: Path, kubeconfig: Path) -> list[str]:
        frames = os.environ.get("BENCH_TRACE_FRAMES", "12")  # fewer: faster, less detail
        return [
            sys.executable,
            "-X",
            f"tracemalloc={frames}",
            *super().argv(script, kubeconfig)[1:],
        ]

    def script(self) -> Path:
        return harness.OPERATORS / "trikopf_probe.py"


def _snap(operator: harness.Operator, probe_dir: Path, n: int) -> dict[str, object]:
    operator.process.send_signal(signal.SIGUSR2)
    path = probe_dir / f"{n}.json"
    deadline = time.monotonic() + 120
    while not path.exists() or not (probe_dir / f"{n}.snapshot").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no probe dump")
        time.sleep(0.2)
    time.sleep(1.0)  # the json is written after the snapshot: let it finish
    return json.loads(path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["idle", "daemon"])
    parser.add_argument("n", type=int)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--mid", type=float, default=None, help="snapshot this many seconds into the burst instead"
    )
    args = parser.parse_args()
    n = args.n
    probe_dir = Path(tempfile.mkdtemp(prefix="probe-"))
    os.environ["BENCH_PROBE_DIR"] = str(probe_dir)
    with (
        harness.StreamServer(stream=n, added_only=True, gate=True) as server,
        harness.run_operator(_Probe(), args.workload, server=server, expect=n) as operator,
    ):
        harness._watch_ready(server)
        time.sleep(1.0)
        rss0 = operator.rss()
        census0 = _snap(operator, probe_dir, 0)
        server.release()
        if args.mid is not None:
            operator.wait_for("first", timeout=60)
            time.sleep(args.mid)
            rss_mid = operator.rss()
            _snap(operator, probe_dir, 1)
            (probe_dir / "1.json").rename(probe_dir / "mid.json")
            (probe_dir / "1.snapshot").rename(probe_dir / "mid.snapshot")
            print(
                f"RSS per object {args.mid}s into the burst: {(rss_mid - rss0) / n / 1024:.2f} KB"
            )
        operator.wait_for("done", timeout=120 + n / 10)
        harness.wait_for_quiet_writes(server, quiet=2.0, timeout=120 + n / 20)
        time.sleep(6.0)
        rss1 = operator.rss()
        census1 = _snap(operator, probe_dir, 2 if args.mid is not None else 1)
    s0 = tracemalloc.Snapshot.load(str(probe_dir / "0.snapshot"))
    if args.mid is not None:
        census1 = json.loads((probe_dir / "mid.json").read_text())
        census1["peak"] = census1["current"]
    s1 = tracemalloc.Snapshot.load(
        str(probe_dir / ("mid.snapshot" if args.mid is not None else "1.snapshot"))
    )
    print(f"{args.workload}, N={n}")
    print(f"RSS per object:     {(rss1 - rss0) / n / 1024:8.2f} KB")
    traced = (census1["current"] - census0["current"]) / n  # type: ignore[operator]
    print(f"traced per object:  {traced / 1024:8.2f} KB (live Python allocations)")
    print(
        f"traced peak during the burst: {census1['peak'] / 1e6:.1f} MB; "  # type: ignore[operator]
        f"after: {census1['current'] / 1e6:.1f} MB"
    )  # type: ignore[operator]
    types0, types1 = census0["types"], census1["types"]
    grown = sorted(
        ((t, c - types0.get(t, 0)) for t, c in types1.items()),  # type: ignore[union-attr]
        key=lambda tc: -tc[1],
    )
    print("types that grew (per object):")
    for name, delta in grown[:15]:
        print(f"  {delta / n:6.2f}  {name}")
    print("allocation sites that grew (bytes per object):")
    for stat in s1.compare_to(s0, "lineno")[: args.top]:
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / n:8.1f}  {stat.count_diff / n:6.2f}  {frame.filename}:{frame.lineno}"
        )
    print("by traceback (top 8):")
    for stat in s1.compare_to(s0, "traceback")[:8]:
        print(f"  {stat.size_diff / n:8.1f} B/object")
        for line in stat.traceback.format()[-12:]:
            print("     ", line)


if __name__ == "__main__":
    main()
