"""The workloads: each runs one framework's operator as a subprocess against the stream server.

Every measurement is one function returning a dict of figures; ``run.py`` repeats them, takes
medians and prints the table. Nothing here asserts a timing.

The operator process reports its handler calls through a pipe (see ``operators/_report.py``);
the stream server counts the requests the operator makes (patches, posted events). Both use
``time.monotonic()``, which on Linux is one clock for all processes, so "released at" on the
server and "last handler call" in the operator can be subtracted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from streamserver import StreamServer  # noqa: E402

OPERATORS = HERE / "operators"
LOGS = HERE / "results" / "logs"


class NotRunnable(Exception):
    """The framework cannot run this workload yet (reported as "not measured yet")."""


class Framework:
    name: str

    def argv(self, script: Path, kubeconfig: Path) -> list[str]:
        raise NotImplementedError

    def script(self) -> Path:
        return OPERATORS / f"{self.name}_operator.py"

    def check(self, workload: str) -> None:
        """Raise NotRunnable if this framework cannot run ``workload`` here."""


class Kopf(Framework):
    name = "kopf"

    def argv(self, script: Path, kubeconfig: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "kopf",
            "run",
            "--standalone",
            "--all-namespaces",
            str(script),
        ]

    def check(self, workload: str) -> None:
        if importlib.util.find_spec("kopf") is None:
            raise NotRunnable("kopf is not installed in this environment")


class Trikopf(Framework):
    name = "trikopf"

    def argv(self, script: Path, kubeconfig: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "trikopf",
            "--standalone",
            "--all-namespaces",
            "--kubeconfig",
            str(kubeconfig),
            str(script),
        ]

    def check(self, workload: str) -> None:
        if importlib.util.find_spec("trikopf") is None:
            raise NotRunnable("trikopf is not installed in this environment")
        if importlib.util.find_spec("trikopf.__main__") is None:
            raise NotRunnable("no `python -m trikopf` yet")
        import trikopf.on

        needed = {"daemon": "daemon", "resume": "resume", "create": "create", "idle": "create"}
        decorator = needed.get(workload, "event")
        if not hasattr(trikopf.on, decorator):
            raise NotRunnable(f"no trikopf.on.{decorator} yet")


FRAMEWORKS: dict[str, Framework] = {"kopf": Kopf(), "trikopf": Trikopf()}


class Operator:
    """A running operator process and the report lines it sent."""

    def __init__(self, process: subprocess.Popen[bytes], read_fd: int, log: Path) -> None:
        self.process = process
        self.read_fd = read_fd
        self.log = log
        self.reports: list[dict[str, Any]] = []
        self._tail = b""

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.read_fd], [], [], timeout)
        if ready:
            data = os.read(self.read_fd, 1 << 16)
            if not data:
                self._check_alive(force=True)
                return
            lines = (self._tail + data).split(b"\n")
            self._tail = lines.pop()
            self.reports.extend(json.loads(line) for line in lines if line)

    def _check_alive(self, *, force: bool = False) -> None:
        code = self.process.poll()
        if code is not None or force:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"the operator exited (code {code}); its log ends with:\n{tail}")

    def wait_for(self, kind: str, *, timeout: float) -> dict[str, Any]:
        """Wait for the report of ``kind`` ("first", "done"), bounded by ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for report in self.reports:
                if report["kind"] == kind:
                    return report
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise TimeoutError(f"no {kind!r} report within {timeout}s; log ends:\n{tail}")
            self._check_alive()
            self._pump(min(remaining, 0.5))

    def rss(self) -> int:
        """Resident set size of the operator process, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc status")


@contextlib.contextmanager
def run_operator(
    framework: Framework,
    workload: str,
    *,
    server: StreamServer,
    expect: int,
    samples: Path | None = None,
) -> Iterator[Operator]:
    """Start the framework's operator for ``workload``; stop it (SIGTERM, then SIGKILL) on exit."""
    framework.check(workload)
    LOGS.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    kubeconfig = server.write_kubeconfig(workdir / "kubeconfig")
    log = LOGS / f"{framework.name}-{workload}-{expect}.log"
    read_fd, write_fd = os.pipe()
    env = dict(os.environ)
    env.update(
        KUBECONFIG=str(kubeconfig),
        BENCH_WORKLOAD=workload,
        BENCH_EXPECT=str(expect),
        BENCH_REPORT_FD=str(write_fd),
        BENCH_SAMPLES=str(samples or ""),
        PYTHONUNBUFFERED="1",
    )
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            framework.argv(framework.script(), kubeconfig),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(write_fd,),
            cwd=workdir,
        )
    os.close(write_fd)
    operator = Operator(process, read_fd, log)
    try:
        yield operator
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        os.close(read_fd)
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) that process ``pid`` has used so far, its children excluded.

    ``/proc/<pid>/stat`` gives it in clock ticks (10 ms), too coarse for a run of 1,000
    events; the sum of ``/proc/<pid>/task/*/schedstat`` (on-CPU nanoseconds of each live
    thread, the figure the kernel scales utime + stime to) is exact but forgets threads that
    have exited. The exact one is used unless the coarse one is ahead by more than two ticks.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14, stime field 15.
    coarse = (int(fields[11]) + int(fields[12])) / _TICK
    exact = 0.0
    read = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                exact += int((task / "schedstat").read_text().split()[0]) / 1e9
                read += 1
    except FileNotFoundError:
        return coarse
    # No schedstat at all (a kernel without it): the ticks are all there is.
    return coarse if not read or coarse - exact > 2 / _TICK else exact


class CpuMeter:
    """The CPU time of the operator and of the server over one timed span."""

    def __init__(self, operator: Operator, server: StreamServer) -> None:
        self.pids = {"operator": operator.process.pid, "server": server.pid}
        self.started = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def figures(self, n: int, unit: str) -> dict[str, float]:
        """``cpu_us_per_<unit>`` (the operator's) and ``server_cpu_us_per_<unit>`` since start."""
        used = {name: cpu_seconds(pid) - self.started[name] for name, pid in self.pids.items()}
        return {
            f"cpu_us_per_{unit}": used["operator"] / n * 1e6,
            f"server_cpu_us_per_{unit}": used["server"] / n * 1e6,
            "cpu_seconds": used["operator"],
            "server_cpu_seconds": used["server"],
        }


def wait_for_quiet_writes(server: StreamServer, *, quiet: float, timeout: float) -> dict[str, Any]:
    """Wait until the operator has made no write request for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        stats = server.stats()
        last = stats["last_write_at"] or stats["released_at"] or stats["now"]
        if stats["now"] - last >= quiet:
            return stats
        if time.monotonic() > deadline:
            return stats
        time.sleep(0.1)


def _watch_ready(server: StreamServer, timeout: float = 120.0) -> None:
    server.wait_for_watchers(1, timeout=timeout)


# --------------------------------------------------------------------------- workloads


def raw_throughput(framework: Framework, n: int) -> dict[str, Any]:
    """N events (ADDED/MODIFIED, distinct objects) into an on.event handler: events/s."""
    with (
        StreamServer(stream=n, gate=True) as server,
        run_operator(framework, "event", server=server, expect=n) as operator,
    ):
        _watch_ready(server)
        cpu = CpuMeter(operator, server)
        released = server.release()["released_at"]
        done = operator.wait_for("done", timeout=60 + n / 50)
        seconds = done["t"] - released
        return {
            "value": n / seconds,
            "unit": "events/s",
            "seconds": seconds,
            **cpu.figures(n, "event"),
        }


def wait_for_status(server: StreamServer, n: int, *, timeout: float) -> dict[str, Any]:
    """Wait until ``n`` objects have a status written (the handler results persisted)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = server.stats()
        if stats["status_objects"] >= n:
            return stats
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {stats['status_objects']} of {n} objects got a status within {timeout}s"
            )
        time.sleep(0.05)


def change_handling(framework: Framework, n: int) -> dict[str, Any]:
    """N created objects, one on.create handler returning a result: objects fully handled/s.

    "Fully handled" means the handler ran and its result is in the object's status on the
    server. Every write request the framework makes is counted; the time until the last of
    them (after 1.5 s without any) is reported as well, since trailing requests (events
    posted, annotations) are work the framework does for these objects too.
    """
    with (
        StreamServer(stream=n, added_only=True, gate=True) as server,
        run_operator(framework, "create", server=server, expect=n) as operator,
    ):
        _watch_ready(server)
        cpu = CpuMeter(operator, server)
        released = server.release()["released_at"]
        done = operator.wait_for("done", timeout=60 + n / 20)
        wait_for_status(server, n, timeout=60 + n / 20)
        stats = wait_for_quiet_writes(server, quiet=1.5, timeout=60 + n / 20)
        used = cpu.figures(n, "object")
        handled = max(done["t"], stats["last_status_at"]) - released
        requests = stats["requests"]
        patches = requests.get("PATCH", 0)
        posts = requests.get("POST events", 0)
        return {
            "value": n / handled,
            "unit": "objects/s",
            "seconds": handled,
            "handlers_seconds": done["t"] - released,
            "all_requests_seconds": (stats["last_write_at"] or done["t"]) - released,
            "patches_per_object": patches / n,
            "events_per_object": posts / n,
            "requests_per_object": (patches + posts) / n,
            **used,
        }


def latency(framework: Framework, rate: float, *, duration: float) -> dict[str, Any]:
    """A steady stream at ``rate`` events/s into on.event: server send → handler start."""
    n = max(100, int(rate * duration))
    samples = Path(tempfile.mkdtemp(prefix="bench-lat-")) / "samples.json"
    try:
        with (
            StreamServer(stream=n, added_only=True, rate=rate, gate=True) as server,
            run_operator(
                framework, "latency", server=server, expect=n, samples=samples
            ) as operator,
        ):
            _watch_ready(server)
            cpu = CpuMeter(operator, server)
            server.release()
            operator.wait_for("done", timeout=60 + 3 * duration + n / 50)
            used = cpu.figures(n, "event")
            values = sorted(json.loads(samples.read_text()))
    finally:
        if samples.exists():
            samples.unlink()
        samples.parent.rmdir()
    ms = [v * 1000 for v in values]
    return {
        "value": _percentile(ms, 0.99),
        "unit": "ms",
        "p50": _percentile(ms, 0.50),
        "p99": _percentile(ms, 0.99),
        "max": ms[-1],
        "rate": rate,
        "events": n,
        **used,
    }


def memory(framework: Framework, n: int, *, daemons: bool) -> dict[str, Any]:
    """RSS per object: idle (handled once by on.create) or with one async daemon each."""
    workload = "daemon" if daemons else "idle"
    with (
        StreamServer(stream=n, added_only=True, gate=True) as server,
        run_operator(framework, workload, server=server, expect=n) as operator,
    ):
        _watch_ready(server)
        time.sleep(1.0)  # let the just-started operator's own allocations settle
        before = operator.rss()
        cpu = CpuMeter(operator, server)
        server.release()
        operator.wait_for("done", timeout=60 + n / 20)
        wait_for_quiet_writes(server, quiet=2.0, timeout=60 + n / 50)
        used = cpu.figures(n, "object")
        # Kopf's per-object workers exit after 5 s idle; trikopf's supervisors when idle too.
        time.sleep(6.0)
        after = operator.rss()
        return {
            "value": (after - before) / n,
            "unit": "bytes/object",
            "rss_before": before,
            "rss_after": after,
            **used,
        }


def startup(framework: Framework, n: int) -> dict[str, Any]:
    """N pre-existing, already handled objects: process start → every object resumed."""
    with StreamServer(listed=n, handled=framework.name) as server:
        started = time.monotonic()
        with run_operator(framework, "resume", server=server, expect=n) as operator:
            # From the process start: its CPU time includes the interpreter's start and imports.
            cpu = CpuMeter(operator, server)
            cpu.started["operator"] = 0.0
            done = operator.wait_for("done", timeout=120 + n / 20)
            used = cpu.figures(n, "object")
            first = operator.wait_for("first", timeout=1)
            stats = wait_for_quiet_writes(server, quiet=1.0, timeout=60)
        requests = stats["requests"]
        return {
            "value": done["t"] - started,
            "unit": "s",
            "first_resumed": first["t"] - started,
            "patches_per_object": requests.get("PATCH", 0) / n,
            **used,
        }


def limit(reader: str, json_name: str, server: StreamServer, n: int) -> dict[str, Any]:
    """One limit reader, in its own process, over the whole pre-generated stream."""
    output = subprocess.run(
        [
            sys.executable,
            str(HERE / "limits.py"),
            "--url",
            server.url,
            "--events",
            str(n),
            "--reader",
            reader,
            "--json",
            json_name,
        ],
        check=True,
        capture_output=True,
        timeout=120 + n / 1000,
    )
    result = json.loads(output.stdout)
    unit = "patches/s" if reader == "socket-patch" else "events/s"
    figures = {"value": result["rate"], "unit": unit, "seconds": result["seconds"]}
    if "cpu_seconds" in result:
        per = "patch" if reader == "socket-patch" else "event"
        figures[f"cpu_us_per_{per}"] = result["cpu_seconds"] / result["events"] * 1e6
    return figures


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def summarise(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max, and the relative half-range) of repeated measurements."""
    median = statistics.median(values)
    low, high = min(values), max(values)
    return {
        "median": median,
        "min": low,
        "max": high,
        "spread": (high - low) / 2 / median if median else 0.0,
    }
