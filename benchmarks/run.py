"""Run the benchmark suite: trikopf beside Kopf and the no-framework limit, in one run.

    python benchmarks/run.py                      # the default sizes (~15 minutes on 2 cores)
    python benchmarks/run.py --full               # N = 1,000 / 10,000 / 50,000 everywhere
    python benchmarks/run.py throughput limits    # only some workloads
    python benchmarks/run.py --frameworks trikopf --repeat 5 throughput

Workloads: ``limits``, ``throughput``, ``create``, ``latency``, ``memory``, ``startup``.
``nox -s bench`` installs Kopf, lightkube, orjson and matplotlib and runs this file.

Prints a table of medians (with their spread over the repeats) and the ratios trikopf/Kopf and
trikopf/limit, writes ``results/bench-<timestamp>.json`` and ``results/latest.json``, and a
chart ``results/latest.png``. Figures are printed, never asserted. Run it where nothing else
loads the machine: on 2 cores the operator, the server and the harness already use them all.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import report  # noqa: E402
from streamserver import StreamServer  # noqa: E402

RESULTS = HERE / "results"
WORKLOADS = ("limits", "throughput", "create", "latency", "memory", "startup")
LIMIT_READERS = [
    ("socket-noparse", "none"),
    ("socket", "orjson"),
    ("socket", "stdlib"),
    ("httpx-raw", "orjson"),
    ("httpx-raw", "stdlib"),
    ("httpx-lines", "orjson"),
    ("httpx-lines", "stdlib"),
    ("lightkube", "stdlib"),
    ("socket-patch", "none"),
]
LOAD_LEVELS = report.LOAD_LEVELS


class Sizes:
    def __init__(self, full: bool) -> None:
        big = [1_000, 10_000, 50_000]
        # trikopf alone goes further where Kopf would take too long (the time budget decides).
        alone = [*big, 100_000] if full else big
        self.limits = 50_000
        self.throughput = {"kopf": big if full else big[:2], "trikopf": alone}
        self.create = {"kopf": big if full else big[:2], "trikopf": alone}
        self.memory = {"kopf": big[:2], "trikopf": [*big[:2], 100_000] if full else big[:2]}
        self.startup = 10_000
        self.latency_duration = 5.0 if full else 3.0


class Suite:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.sizes = Sizes(args.full)
        self.repeat: int = args.repeat
        self.frameworks = [harness.FRAMEWORKS[name] for name in args.frameworks]
        self.records: list[dict[str, Any]] = []
        # Seconds one figure may take before repeats and larger sizes are left out.
        self.budget: float = args.budget

    def fits(
        self, workload: str, framework: harness.Framework, n: int, *, judge_by: str | None = None
    ) -> bool:
        """Whether size ``n`` fits the time budget, judged by the rate at the smaller sizes
        of ``judge_by`` (by default the same workload)."""
        smaller = [
            r
            for r in self.records
            if r["workload"] == (judge_by or workload)
            and r["subject"] == framework.name
            and "seconds" in r
        ]
        if not smaller:
            return True
        last = max(smaller, key=lambda r: r["n"])
        estimate = last["seconds"] * n / last["n"]
        if estimate <= self.budget:
            return True
        self.skip(
            workload, framework.name, n, f"skipped: ~{estimate:.0f} s per run at the rate measured"
        )
        return False

    def skip(self, workload: str, subject: str, n: int, status: str) -> None:
        record = {"workload": workload, "subject": subject, "label": subject, "n": n}
        record.update(status=status, runs=[])
        self.records.append(record)
        self.show(record)

    # -- bookkeeping
    def record(
        self,
        workload: str,
        subject: str,
        n: int | None,
        fn: Callable[[], dict[str, Any]],
        *,
        repeat: int | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """Run ``fn`` ``repeat`` times; keep the values, their median and spread.

        Stops repeating when the runs so far say the rest would exceed the time budget.
        """
        runs: list[dict[str, Any]] = []
        status = "ok"
        total = repeat or self.repeat
        started = time.monotonic()
        for done in range(total):
            if done and (time.monotonic() - started) / done * (total - done) > self.budget:
                status = f"ok, {done} of {total} runs (the rest would exceed the time budget)"
                break
            try:
                runs.append(fn())
            except harness.NotRunnable as exc:
                status = f"not measured yet: {exc}"
                break
            except Exception as exc:
                status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                if self.args.verbose:
                    traceback.print_exc()
                break
        record: dict[str, Any] = {
            "workload": workload,
            "subject": subject,
            "label": label or subject,
            "n": n,
            "status": status if not runs or status.startswith("ok") else f"partial ({status})",
            "runs": runs,
        }
        if runs:
            record["unit"] = runs[0]["unit"]
            record.update(harness.summarise([r["value"] for r in runs]))
            extras = {k for k in runs[0] if k not in ("value", "unit")}
            for key in sorted(extras):
                values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
                if values:
                    record[key] = harness.summarise(values)["median"]
        self.records.append(record)
        self.show(record)
        return record

    def show(self, record: dict[str, Any]) -> None:
        name = f"{record['workload']:<13} {record['label']:<24} N={record['n'] or '-':<7}"
        if "median" in record:
            used = [
                f"{key.replace('_us_per_', ' µs/').replace('_', ' ')} {report.fmt(record[key])}"
                for key in sorted(record)
                if "cpu_us_per_" in key and isinstance(record[key], (int, float))
            ]
            print(
                f"  {name} {report.fmt(record['median'])} {record['unit']} "
                f"(±{record['spread'] * 100:.0f}%, {len(record['runs'])} runs) {record['status']}"
                + (f"; {', '.join(used)}" if used else ""),
                flush=True,
            )
        else:
            print(f"  {name} {record['status']}", flush=True)

    def find(self, workload: str, subject: str, n: int | None = None) -> dict[str, Any] | None:
        return report.Results(self.records).find(workload, subject, n)

    # -- workloads
    def limits(self) -> None:
        n = self.sizes.limits
        with StreamServer(stream=n) as server:
            for reader, json_name in LIMIT_READERS:
                label = reader if json_name == "none" else f"{reader}+{json_name}"
                # Patches are not a stream: 10,000 of them tell the server's rate well enough.
                count = min(n, 10_000) if reader == "socket-patch" else n
                if reader == "socket-patch":
                    label = "socket-patch (patches/s)"
                self.record(
                    "limits",
                    label,
                    count,
                    lambda r=reader, j=json_name, c=count: harness.limit(
                        r, "stdlib" if j == "none" else j, server, c
                    ),
                )

    def throughput(self) -> None:
        for framework in self.frameworks:
            for n in self.sizes.throughput[framework.name]:
                if not self.fits("throughput", framework, n):
                    break
                self.record(
                    "throughput",
                    framework.name,
                    n,
                    lambda f=framework, n=n: harness.raw_throughput(f, n),
                )

    def create(self) -> None:
        for framework in self.frameworks:
            for n in self.sizes.create[framework.name]:
                if not self.fits("create", framework, n):
                    break
                self.record(
                    "create",
                    framework.name,
                    n,
                    lambda f=framework, n=n: harness.change_handling(f, n),
                )

    def latency(self) -> None:
        for framework in self.frameworks:
            best = self.max_rate(framework)
            if best is None:
                self.record("latency", framework.name, None, lambda f=framework: _not_runnable(f))
                continue
            for level in LOAD_LEVELS:
                rate = best * level
                self.record(
                    "latency",
                    framework.name,
                    int(rate * self.sizes.latency_duration),
                    lambda f=framework, r=rate: harness.latency(
                        f, r, duration=self.sizes.latency_duration
                    ),
                    label=f"{framework.name}@{int(level * 100)}%",
                )

    def max_rate(self, framework: harness.Framework) -> float | None:
        """The framework's own maximum sustained rate: its throughput at N=10,000 in this run.

        (A burst of 1,000 events is handled faster than a framework can keep up with for long;
        the load levels are fractions of the sustained rate.)
        """
        measured = self.find("throughput", framework.name, 10_000)
        if measured is not None:
            return float(measured["median"])
        try:
            framework.check("event")
        except harness.NotRunnable:
            return None
        record = self.record(
            "throughput",
            framework.name,
            10_000,
            lambda: harness.raw_throughput(framework, 10_000),
        )
        return record.get("median")

    def memory(self) -> None:
        for daemons in (False, True):
            workload = "memory-daemon" if daemons else "memory-idle"
            for framework in self.frameworks:
                for n in self.sizes.memory[framework.name]:
                    if not self.fits(workload, framework, n, judge_by="create"):
                        break
                    self.record(
                        workload,
                        framework.name,
                        n,
                        lambda f=framework, n=n, d=daemons: harness.memory(f, n, daemons=d),
                        repeat=1 if not self.args.full else self.repeat,
                    )

    def startup(self) -> None:
        n = self.sizes.startup
        for framework in self.frameworks:
            self.record("startup", framework.name, n, lambda f=framework: harness.startup(f, n))


def _not_runnable(framework: harness.Framework) -> dict[str, Any]:
    framework.check("event")
    raise harness.NotRunnable("no throughput figure to derive its load levels from")


def metadata() -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        # Changes to the library or the suite that are not committed yet (results aside).
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "trikopf", "benchmarks", "pyproject.toml"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        if changed:
            commit += " with uncommitted changes"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {cpu}",
        "system": platform.platform(),
        "python": platform.python_version(),
        "commit": commit,
        "versions": {
            name: version(name)
            for name in ("trikopf", "kopf", "httpx", "orjson", "lightkube", "trio", "anyio")
        },
    }


def _load_average() -> float | None:
    """The 1-minute load average: how busy the machine was besides the suite (None if unknown)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trikopf's benchmark suite")
    parser.add_argument("workloads", nargs="*", help=f"any of: {', '.join(WORKLOADS)}")
    parser.add_argument("--full", action="store_true", help="N = 1k/10k/50k everywhere")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--frameworks", nargs="+", choices=sorted(harness.FRAMEWORKS), default=["kopf", "trikopf"]
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds one figure may take (default 90, with --full 900)",
    )
    parser.add_argument("--no-chart", action="store_true")
    parser.add_argument("--tag", default="", help="write results/latest-TAG.json instead")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of failures")
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = 900.0 if args.full else 90.0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(
            f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}"
        )
    selected = args.workloads or list(WORKLOADS)
    # SIGTERM unwinds like Ctrl-C, so that every server and operator process is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    suite = Suite(args)
    meta = metadata()
    print(f"trikopf benchmarks, {meta['date']}, {meta['machine']}, Python {meta['python']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()), flush=True)
    started = time.monotonic()
    load_before = _load_average()
    for workload in WORKLOADS:
        if workload in selected:
            print(f"\n== {workload}", flush=True)
            getattr(suite, workload)()
    meta["seconds"] = round(time.monotonic() - started, 1)
    meta["load_average"] = [load_before, _load_average()]
    meta["options"] = {
        "full": args.full,
        "repeat": args.repeat,
        "budget": args.budget,
        "workloads": selected,
        "frameworks": args.frameworks,
    }
    summary = report.summary(suite.records)
    print("\n" + summary)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    document = {"meta": meta, "records": suite.records, "table": summary}
    latest = "latest" if not args.tag else f"latest-{args.tag}"
    meta["environment"] = {k: v for k, v in os.environ.items() if k.startswith("BENCH_")}
    for path in (RESULTS / f"bench-{stamp}.json", RESULTS / f"{latest}.json"):
        path.write_text(json.dumps(document, indent=1))
    print(f"\nresults: {RESULTS / f'{latest}.json'} (took {meta['seconds']} s)")
    if not args.no_chart:
        try:
            import chart

            png = chart.draw(document, RESULTS / f"{latest}.png")
            print(f"chart: {png}")
        except ImportError as exc:
            print(f"no chart: {exc}")
    source = "" if not args.tag else f" benchmarks/results/{latest}.json"
    print(f"into the docs: python benchmarks/report.py{source} --update docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
