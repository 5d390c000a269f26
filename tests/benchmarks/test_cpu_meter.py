"""The harness's CPU meter counts what the process itself counts (no timing asserted)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load_module() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # the harness imports its sibling streamserver.py
    try:
        spec = importlib.util.spec_from_file_location("bench_harness", BENCHMARKS / "harness.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


harness = _load_module()


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
