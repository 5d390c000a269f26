from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import trikopf


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_importing_and_preparing_an_operator_leaves_the_collector_alone() -> None:
    out = _run(
        """
        import gc
        before = (gc.get_threshold(), gc.get_freeze_count())
        import trikopf
        trikopf.OperatorSettings()
        trikopf.OperatorRegistry()
        print(before == (gc.get_threshold(), gc.get_freeze_count()))
        """
    )
    assert out == "True"


def test_tuning_sets_the_young_threshold_freezes_and_returns_the_old_thresholds() -> None:
    out = _run(
        """
        import gc, trikopf
        gc.set_threshold(123, 4, 5)
        kept = [object() for _ in range(3)]
        before = trikopf.tune_garbage_collector(young_threshold=7_000)
        print(before, gc.get_threshold(), gc.get_freeze_count() > 0)
        """
    )
    assert out == "(123, 4, 5) (7000, 50, 100) True"


def test_tuning_without_freeze_freezes_nothing() -> None:
    out = _run(
        """
        import gc, trikopf
        # Some interpreters start with objects frozen already (3.12.1 does): compare, not zero.
        frozen = gc.get_freeze_count()
        trikopf.tune_garbage_collector(freeze=False)
        print(gc.get_threshold(), gc.get_freeze_count() - frozen)
        """
    )
    assert out == "(50000, 50, 100) 0"


def test_tuning_refuses_a_threshold_below_one() -> None:
    with pytest.raises(ValueError, match="young_threshold must be a positive number"):
        trikopf.tune_garbage_collector(young_threshold=0)
