"""Tests of the benchmark suite's own parts (never a timing), and how they load them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark_module(filename: str) -> ModuleType:
    """Import ``benchmarks/<filename>`` (not a package) as ``bench_<stem>``.

    The folder is on ``sys.path`` while it runs, since the scripts import their siblings.
    """
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            f"bench_{Path(filename).stem}", BENCHMARKS / filename
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))
