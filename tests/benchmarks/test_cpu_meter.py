"""The harness's CPU meter counts what the process itself counts (no timing asserted)."""

from __future__ import annotations

import os
import time

from tests.benchmarks import load_benchmark_module

harness = load_benchmark_module("harness.py")


def test_cpu_seconds_of_a_process_agree_with_its_own_process_time() -> None:
    before, started = harness.cpu_seconds(os.getpid()), time.process_time()
    burnt = 0
    while time.process_time() - started < 0.2:
        burnt += sum(range(1000))
    after, ended = harness.cpu_seconds(os.getpid()), time.process_time()
    assert burnt > 0
    # Both count only this process's time on a CPU, so a busy machine does not part them; the
    # meter reads exact nanoseconds, within the coarse 10 ms ticks of /proc/<pid>/stat.
    assert abs((after - before) - (ended - started)) < 0.02
