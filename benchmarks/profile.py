"""Where the time goes: sample a framework's operator with py-spy while it runs a workload.

    python benchmarks/profile.py throughput --framework trikopf -n 20000
    python benchmarks/profile.py create --framework trikopf -n 2000
    python benchmarks/profile.py latency --framework trikopf --rate 3000 -n 12000

Runs the workload as ``harness.py`` does, attaches ``py-spy record`` to the operator process for
the measured part, and prints the functions with the most samples: by their own time (the leaf
frame) and including their callees. Writes the raw collapsed stacks to
``results/profile-<framework>-<workload>.txt`` (load into speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
from streamserver import StreamServer  # noqa: E402


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def summarise(raw: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples", "", "own time (leaf frames):"]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    lines += ["", "including callees (trikopf, kopf, httpx, httpcore, h11, json frames only):"]
    keep = ("trikopf/", "kopf/", "httpx/", "httpcore/", "h11/", "json", "aiohttp/")
    interesting = [(f, n) for f, n in inclusive.most_common() if any(k in f for k in keep)]
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in interesting[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workload", choices=("throughput", "create", "latency"))
    parser.add_argument("--rate", type=float, default=3000.0, help="events/s for latency")
    parser.add_argument("--framework", choices=sorted(harness.FRAMEWORKS), default="trikopf")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=8.0, help="sampling time at most")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--native", action="store_true", help="C frames too (the GC, orjson); slows it down"
    )
    args = parser.parse_args()
    framework = harness.FRAMEWORKS[args.framework]
    operator_workload = {"throughput": "event", "create": "create", "latency": "latency"}[
        args.workload
    ]
    paced = args.workload == "latency"
    samples = HERE / "results" / "profile-latency-samples.json"
    out = HERE / "results" / f"profile-{args.framework}-{args.workload}.txt"
    out.parent.mkdir(exist_ok=True)
    with (
        StreamServer(
            stream=args.n,
            added_only=args.workload != "throughput",
            gate=True,
            rate=args.rate if paced else 0.0,
        ) as server,
        harness.run_operator(
            framework, operator_workload, server=server, expect=args.n, samples=samples
        ) as op,
    ):
        server.wait_for_watchers(1, timeout=120)
        sampler = subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(op.process.pid),
                "--format",
                "raw",
                "--rate",
                "100",
                *(["--native"] if args.native else []),
                "--duration",
                str(int(args.seconds)),
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)  # py-spy attaches before the stream starts
        released = server.release()["released_at"]
        done = op.wait_for("done", timeout=120 + args.n / 20)
        print(f"{args.framework} {args.workload} N={args.n}: {done['t'] - released:.2f} s")
        sampler.wait(timeout=args.seconds + 30)
    if paced:
        values = sorted(json.loads(samples.read_text()))
        samples.unlink()
        for q in (0.5, 0.99, 1.0):
            index = min(len(values) - 1, int(q * (len(values) - 1)))
            print(f"latency p{int(q * 100)}: {values[index] * 1000:.1f} ms")
    print(summarise(out, args.top))
    print(f"\ncollapsed stacks: {out}")


if __name__ == "__main__":
    main()
