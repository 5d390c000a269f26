"""Memory given back after a burst: when a burst counts as ended, and what a release does."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import anyio
import pytest

from tests.clocks import virtual_time
from trikopf._util.memory import (
    BurstWatch,
    note_work,
    release_memory,
    serve_memory_release,
    work_seen,
)
from trikopf.settings import BackgroundSettings


def test_a_burst_ends_when_the_blocks_have_fallen_far_and_stay_put() -> None:
    watch = BurstWatch(1_000, burst_blocks=500)
    assert watch.sample(5_000) is False  # rising: a burst in progress
    assert watch.sample(3_000) is False  # falling fast: still settling
    assert watch.sample(2_950) is True  # fell 2,050 from the peak, moved by 50 since
    watch.released(2_900)
    assert watch.sample(2_920) is False  # nothing new since the release


def test_a_small_fall_is_not_a_burst() -> None:
    watch = BurstWatch(10_000, burst_blocks=500)
    assert watch.sample(10_300) is False
    assert watch.sample(10_000) is False
    assert watch.sample(10_000) is False


def test_release_memory_collects_unreachable_cycles() -> None:
    class Node:
        other: Any = None

    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    gc.disable()
    try:
        del a, b
        assert gone() is not None  # only a collection frees a cycle
        release_memory()
        assert gone() is None
    finally:
        gc.enable()


def test_the_release_interval_must_be_positive_or_none() -> None:
    assert BackgroundSettings(memory_release_interval=None).memory_release_interval is None
    with pytest.raises(ValueError, match="memory_release_interval"):
        BackgroundSettings(memory_release_interval=0)


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


async def test_memory_is_released_once_per_burst_after_it_ends() -> None:
    # The live block count over time, one value per look (every 2 s of virtual time).
    counts = iter([100_000, 400_000, 420_000, 150_000, 149_000, 149_500, 150_000, 150_200])
    current = [100_000]
    releases: list[float] = []

    def blocks() -> int:
        return current[0]

    def release() -> None:
        releases.append(anyio.current_time())

    with anyio.move_on_after(2 * 8 + 1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: serve_memory_release(interval=2.0, release=release, blocks=blocks)
            )
            for count in counts:
                await anyio.sleep(1.0)
                current[0] = count
                await anyio.sleep(1.0)
    # Looks at 2, 4, 6, ...: the burst peaks at 420,000, falls to 150,000 at the 8th second,
    # and has settled (149,000) at the 10th: one release, then none for the small changes.
    assert releases == [10.0]


async def test_memory_is_not_released_while_work_goes_on() -> None:
    # A burst that has ended by the block count, but the watch still reads events: the
    # release waits for the first interval in which no work was noted.
    counts = iter([400_000, 150_000, 150_000, 150_000, 150_000, 150_000])
    busy_until = 8.0  # work is noted at every half second past the second before this
    current = [100_000]
    work = [0]
    releases: list[float] = []

    def release() -> None:
        releases.append(anyio.current_time())

    with anyio.move_on_after(2 * 6 + 1):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: serve_memory_release(
                    interval=2.0, release=release, blocks=lambda: current[0], work=lambda: work[0]
                )
            )
            await anyio.sleep(0.25)  # no change at the very times of the looks (2, 4, ...)
            for count in counts:
                for _ in range(2):
                    await anyio.sleep(0.5)
                    if anyio.current_time() < busy_until:
                        work[0] += 1
                    await anyio.sleep(0.5)
                current[0] = count
    # The block count says "ended" from the look at 8 s on (peak 400,000 seen at 4 s, 150,000
    # at 6 s and 8 s), but work was noted up to 7.75 s: the look at 10 s is the first after a
    # quiet interval.
    assert releases == [10.0]


def test_note_work_counts() -> None:
    before = work_seen()
    note_work()
    note_work()
    assert work_seen() == before + 2
