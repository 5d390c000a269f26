"""Timers on the embedded API server, on Trio's virtual clock."""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import pytest

import trikopf
from tests.clocks import virtual_time
from tests.engines.conftest import Cluster, Moments, has_finalizer, quiet_settings
from trikopf.engines.timers import next_tick


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


def gaps(times: list[float]) -> list[int]:
    return [round(b - a) for a, b in itertools.pairwise(times)]


def test_sharp_ticks_keep_to_their_grid_and_skip_the_overrun_ones() -> None:
    assert next_tick(anchor=100.0, interval=10.0, now=100.0) == 110.0
    assert next_tick(anchor=100.0, interval=10.0, now=113.0) == 120.0
    assert next_tick(anchor=100.0, interval=10.0, now=135.5) == 140.0


async def test_timer_interval_counts_from_the_end_of_the_previous_call(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=10)
    async def ticking(**_: Any) -> None:
        moments.mark("tick")
        await anyio.sleep(3)  # each call takes 3 seconds

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("tick", 4)

    assert gaps(moments.times("tick"))[:3] == [13, 13, 13]


async def test_sharp_timer_keeps_to_its_interval_whatever_the_calls_take(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=10, sharp=True)
    async def ticking(**_: Any) -> None:
        moments.mark("tick")
        await anyio.sleep(3)

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("tick", 4)

    assert gaps(moments.times("tick"))[:3] == [10, 10, 10]


async def test_timer_waits_for_its_initial_delay_and_stores_its_results(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=5, initial_delay=20)
    async def counting(patch: trikopf.Patch, **_: Any) -> dict[str, int]:
        moments.mark("tick")
        patch.metadata.labels["ticked"] = "yes"
        return {"ticks": len(moments.times("tick"))}

    async with cluster.operator(registry):
        moments.mark("created")
        await cluster.create()
        body = await cluster.wait_for(
            lambda b: b is not None and (b.get("status") or {}).get("counting") == {"ticks": 2}
        )

    assert 20 <= moments.times("tick")[0] - moments.times("created")[0] < 21
    assert gaps(moments.times("tick"))[0] == 5
    assert body["metadata"]["labels"] == {"ticked": "yes"}


async def test_idle_timer_ticks_only_after_the_object_has_not_changed_for_that_long(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=5, idle=20)
    async def quiet(**_: Any) -> str:
        moments.mark("tick")
        return "tick"  # written to status, which does not count as a change

    async with cluster.operator(registry):
        moments.mark("created")
        await cluster.create()
        await moments.wait_for("tick", 3)
        moments.mark("changed")
        await cluster.patch({"spec": {"size": 2}})
        await moments.wait_for("tick", 4)

    created = moments.times("created")[0]
    changed = moments.times("changed")[0]
    ticks = moments.times("tick")
    assert 20 <= ticks[0] - created < 21
    assert gaps(ticks)[:2] == [5, 5]
    assert 20 <= ticks[3] - changed < 21


async def test_timer_retries_a_failed_call_after_its_delay_not_its_interval(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=60)
    async def flaky(retry: int, **_: Any) -> None:
        moments.mark(f"try {retry}")
        if retry < 2:
            raise trikopf.TemporaryError("not yet", delay=4)

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("try 0", 2)

    assert moments.names() == ["try 0", "try 1", "try 2", "try 0"]
    assert gaps([t for _, t in moments.seen]) == [4, 4, 60]


async def test_timers_stop_and_start_again_as_the_filters_stop_and_start_matching(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer(
        "kopfexamples",
        registry=registry,
        interval=10,
        when=lambda spec, **_: spec.get("enabled") is True,
    )
    async def switchable(**_: Any) -> None:
        moments.mark("tick")

    async with cluster.operator(registry):
        await cluster.create(spec={"enabled": False})
        await anyio.sleep(30)
        assert moments.times("tick") == []
        await cluster.patch({"spec": {"enabled": True}})
        await moments.wait_for("tick", 2)
        moments.mark("disabled")
        await cluster.patch({"spec": {"enabled": False}})
        await anyio.sleep(50)
        assert len(moments.times("tick")) == 2
        await cluster.patch({"spec": {"enabled": True}})
        await moments.wait_for("tick", 3)


async def test_timer_holds_the_finalizer_until_it_has_stopped(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=1)
    async def busy(**_: Any) -> None:
        moments.mark("tick")
        await anyio.sleep(0.5)

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("tick")
        body = await cluster.wait_for(has_finalizer)
        assert has_finalizer(body)
        await cluster.delete()
        await cluster.wait_until_gone()
        ticks = len(moments.times("tick"))
        await anyio.sleep(10)
        assert len(moments.times("tick")) == ticks  # nothing ticks for a deleted object


def test_daemon_and_timer_options_are_checked_when_decorating() -> None:
    registry = trikopf.OperatorRegistry()

    def fn(**_: Any) -> None:
        pass

    with pytest.raises(TypeError, match="give field= too"):
        trikopf.timer("kopfexamples", interval=1, value=1, registry=registry)(fn)
    with pytest.raises(TypeError, match="give field= too"):
        trikopf.daemon("kopfexamples", value=1, registry=registry)(fn)
    with pytest.raises(ValueError, match="interval= must be positive"):
        trikopf.timer("kopfexamples", interval=0, registry=registry)(fn)
    with pytest.raises(ValueError, match="cancellation_timeout= must be zero or positive"):
        trikopf.daemon("kopfexamples", cancellation_timeout=-1, registry=registry)(fn)
    with pytest.raises(TypeError, match="when= must be a callable"):
        trikopf.daemon("kopfexamples", when=True, registry=registry)(fn)  # type: ignore[arg-type]
    assert registry.daemon_handlers == ()
    assert registry.timer_handlers == ()


async def test_timer_call_in_progress_gets_its_window_when_the_operator_exits(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.timer("kopfexamples", registry=registry, interval=1)
    async def slow(**_: Any) -> None:
        moments.mark("call")
        await moments.sleep_until_cancelled(100)

    settings = quiet_settings()
    settings.background.cancellation_timeout = 4
    async with cluster.operator(registry, settings=settings) as operator:
        await cluster.create()
        await moments.wait_for("call")
        stop_at = anyio.current_time()
        operator.stop()
        await operator.stopped.wait()
        took = anyio.current_time() - stop_at

    assert 4 <= moments.times("cancelled")[0] - stop_at < 5
    assert took < 6
