"""The loop clock and the run-local values that the round path reads without AnyIO's lookups."""

from __future__ import annotations

import time

import anyio
import pytest
import trio
import trio.testing

from trikopf._util.clock import current_time, wall_now
from trikopf._util.runlocal import RunLocal

pytestmark = pytest.mark.anyio


async def test_current_time_is_anyios_clock() -> None:
    before = anyio.current_time()
    ours = current_time()
    after = anyio.current_time()
    assert before <= ours <= after


async def test_wall_now_follows_the_loop_clock() -> None:
    first = wall_now()
    assert abs(first - time.time()) < 5.0
    await anyio.sleep(0.01)
    second = wall_now()
    assert second - first == pytest.approx(0.01, abs=0.5)
    assert second > first


async def test_run_local_is_one_value_per_run() -> None:
    made: list[object] = []
    local: RunLocal[object] = RunLocal("test-run-local", lambda: made.append(object()) or made[-1])
    assert local.get() is local.get()
    assert len(made) == 1


def test_run_locals_and_anchors_differ_between_runs() -> None:
    local: RunLocal[list[int]] = RunLocal("test-run-local-runs", list)
    seen: list[list[int]] = []
    walls: list[float] = []

    async def use() -> None:
        seen.append(local.get())
        seen.append(local.get())
        walls.append(wall_now())
        trio.lowlevel.current_clock().jump(3600.0)  # type: ignore[attr-defined]
        walls.append(wall_now())

    trio.run(use, clock=trio.testing.MockClock())
    trio.run(use, clock=trio.testing.MockClock())
    assert seen[0] is seen[1]
    assert seen[2] is seen[3]
    assert seen[0] is not seen[2]
    assert walls[1] - walls[0] == pytest.approx(3600.0)
    # A fresh clock anchors afresh: the second run starts near the real time, not an hour on.
    assert abs(walls[2] - time.time()) < 60.0
