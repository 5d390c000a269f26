"""Daemons on the embedded API server, on Trio's virtual clock."""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any

import anyio
import anyio.from_thread
import pytest

import trikopf
from tests.clocks import virtual_time
from tests.engines.conftest import Cluster, Moments, has_finalizer, quiet_settings
from trikopf.engines import StopReason


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


async def test_daemon_stops_within_its_timeout_on_deletion_and_the_finalizer_goes_after(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, cancellation_timeout=5)
    async def monitor(stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        moments.mark("started")
        await stopped.wait()
        moments.mark(f"asked: {stopped.reason.name if stopped.reason else None}")
        await anyio.sleep(2)  # its own cleanup, well within the timeout
        moments.mark("returned")

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("started")
        held = await cluster.wait_for(has_finalizer)
        assert has_finalizer(held)
        deleted_at = anyio.current_time()
        await cluster.delete()
        await cluster.wait_until_gone()
        gone_at = anyio.current_time()

    assert moments.names() == ["started", "asked: DELETED", "returned"]
    returned = moments.times("returned")[0]
    assert 2.0 <= returned - deleted_at < 5.0
    assert gone_at >= returned


async def test_daemon_that_ignores_the_flag_is_cancelled_after_its_timeout(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, cancellation_timeout=3)
    async def stubborn(**_: Any) -> None:
        moments.mark("started")
        await moments.sleep_until_cancelled()

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("started")
        await cluster.wait_for(has_finalizer)
        deleted_at = anyio.current_time()
        await cluster.delete()
        await cluster.wait_until_gone()
        gone_at = anyio.current_time()

    cancelled = moments.times("cancelled")[0]
    assert 3.0 <= cancelled - deleted_at < 4.0
    assert gone_at >= cancelled


async def test_daemon_waits_for_its_initial_delay(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, initial_delay=30)
    async def delayed(stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        moments.mark("started")
        await stopped.wait()

    async with cluster.operator(registry):
        moments.mark("created")
        await cluster.create()
        await moments.wait_for("started")

    assert 30.0 <= moments.times("started")[0] - moments.times("created")[0] < 31.0


async def test_crashing_daemon_is_restarted_with_a_doubling_backoff(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, backoff=10)
    async def crashing(retry: int, **_: Any) -> None:
        moments.mark("started")
        raise RuntimeError(f"crash number {retry + 1}")

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("started", 4)

    starts = moments.times("started")
    gaps = [round(b - a) for a, b in itertools.pairwise(starts)]
    assert gaps[:3] == [10, 20, 40]


async def test_temporary_error_restarts_the_daemon_after_its_own_delay(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, backoff=100)
    async def flaky(retry: int, **_: Any) -> dict[str, int]:
        moments.mark("started")
        if retry < 2:
            raise trikopf.TemporaryError("not yet", delay=7)
        return {"attempts": retry + 1}

    async with cluster.operator(registry):
        await cluster.create()
        body = await cluster.wait_for(
            lambda b: b is not None and "flaky" in (b.get("status") or {})
        )

    starts = moments.times("started")
    assert [round(b - a) for a, b in itertools.pairwise(starts)] == [7, 7]
    assert body["status"]["flaky"] == {"attempts": 3}


async def test_daemon_that_returns_is_not_restarted_and_its_result_is_stored(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry)
    async def once(**_: Any) -> str:
        moments.mark("ran")
        return "done"

    async with cluster.operator(registry):
        await cluster.create()
        await cluster.wait_for(lambda b: b is not None and b.get("status", {}).get("once"))
        # Later changes of the object do not start it again: neither while its worker is
        # still there, nor after the worker went idle and a new one serves the object.
        await cluster.patch({"spec": {"size": 2}})
        await anyio.sleep(60)
        await cluster.patch({"metadata": {"labels": {"touched": "yes"}}})
        await anyio.sleep(60)

    assert moments.names() == ["ran"]


async def test_daemon_sees_the_newest_body_through_its_kwargs(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    sizes: list[Any] = []

    @trikopf.daemon("kopfexamples", registry=registry)
    async def watcher(stopped: trikopf.AsyncDaemonStopped, spec: trikopf.Spec, **_: Any) -> None:
        while not stopped:
            sizes.append(spec.get("size"))
            await stopped.wait(1)

    async with cluster.operator(registry):
        await cluster.create(spec={"size": 1})
        await anyio.sleep(5)
        await cluster.patch({"spec": {"size": 2}})
        await anyio.sleep(5)

    assert sizes[0] == 1
    assert sizes[-1] == 2


async def test_daemon_body_meta_and_metadata_follow_the_object(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    seen: list[tuple[Any, Any, Any]] = []

    @trikopf.daemon("kopfexamples", registry=registry)
    async def watcher(
        stopped: trikopf.AsyncDaemonStopped,
        body: trikopf.Body,
        meta: trikopf.Meta,
        metadata: trikopf.Meta,
        **_: Any,
    ) -> None:
        while not stopped:
            labels = (body["metadata"].get("labels") or {}, meta.labels, metadata.labels)
            seen.append(tuple(part.get("run") for part in labels))
            await stopped.wait(1)

    async with cluster.operator(registry):
        await cluster.create()
        await anyio.sleep(5)
        await cluster.patch({"metadata": {"labels": {"run": "yes"}}})
        await anyio.sleep(5)

    assert seen[0] == (None, None, None)
    assert seen[-1] == ("yes", "yes", "yes")


async def test_daemons_stop_and_start_again_as_the_filters_stop_and_start_matching(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, labels={"run": "yes"})
    async def picky(stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        moments.mark("started")
        await stopped.wait()
        moments.mark(f"stopped: {stopped.reason.name if stopped.reason else None}")

    async with cluster.operator(registry):
        await cluster.create()
        await anyio.sleep(30)
        assert moments.names() == []
        await cluster.patch({"metadata": {"labels": {"run": "yes"}}})
        await moments.wait_for("started")
        await cluster.patch({"metadata": {"labels": {"run": "no"}}})
        await moments.wait_for("stopped: FILTERED_OUT")
        await cluster.patch({"metadata": {"labels": {"run": "yes"}}})
        await moments.wait_for("started", 2)
        await cluster.delete()
        await cluster.wait_until_gone()

    assert moments.names() == [
        "started",
        "stopped: FILTERED_OUT",
        "started",
        "stopped: DELETED",
    ]


@pytest.mark.slow
async def test_operator_exit_with_a_thousand_daemons_takes_bounded_time(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    running = 0
    everyone = anyio.Event()
    count = 1000

    @trikopf.daemon("kopfexamples", registry=registry, cancellation_timeout=5)
    async def stubborn(name: str, stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        nonlocal running
        running += 1
        if running == count:
            everyone.set()
        if name.endswith(("0", "2", "4", "6", "8")):
            await stopped.wait()  # half of them return when asked ...
        else:
            await anyio.sleep(math.inf)  # ... the other half has to be cancelled

    operator_settings = quiet_settings()
    operator_settings.processing.grace_period = 30
    async with cluster.operator(registry, settings=operator_settings) as operator:
        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(cluster.create, f"obj-{i}")
        with anyio.fail_after(600):
            await everyone.wait()
        stop_at = anyio.current_time()
        operator.stop()
        await operator.stopped.wait()
        took = anyio.current_time() - stop_at

    assert running == count
    assert took <= 5.0 + 1.0


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_sync_daemon_honours_the_stopped_flag_from_its_thread(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    registry = trikopf.OperatorRegistry()
    reasons: list[StopReason | None] = []
    started = anyio.Event()

    @trikopf.daemon("kopfexamples", registry=registry, cancellation_timeout=30)
    def polling(stopped: trikopf.SyncDaemonStopped, **_: Any) -> None:
        anyio.from_thread.run_sync(started.set)  # this runs in the daemon's own thread
        while not stopped:
            stopped.wait(0.05)
        reasons.append(stopped.reason)

    async with cluster.operator(registry):
        await cluster.create()
        with anyio.fail_after(30):
            await started.wait()
        await cluster.delete()
        await cluster.wait_until_gone(within=30)

    assert reasons == [StopReason.DELETED]
    assert not [r for r in caplog.records if "did not stop" in r.getMessage()]


async def test_daemon_keeps_a_status_field_current_by_flushing_its_patch(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.daemon("kopfexamples", registry=registry)
    async def reporter(
        stopped: trikopf.AsyncDaemonStopped, patch: trikopf.DaemonPatch, **_: Any
    ) -> None:
        checks = 0
        while not stopped:
            checks += 1
            patch.status["checks"] = checks
            await patch.flush()
            await stopped.wait(10)

    async with cluster.operator(registry):
        await cluster.create()
        started = anyio.current_time()
        await cluster.wait_for(lambda b: b is not None and b.get("status", {}).get("checks") == 3)
        took = anyio.current_time() - started

    assert 20 <= took < 21


async def test_crashing_daemon_gives_up_after_its_retries(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, backoff=1, retries=3)
    async def hopeless(**_: Any) -> None:
        moments.mark("started")
        raise RuntimeError("always")

    @trikopf.daemon("kopfexamples", registry=registry)
    async def permanent(**_: Any) -> None:
        moments.mark("permanent")
        raise trikopf.PermanentError("never again")

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("started", 3)
        await anyio.sleep(600)

    assert len(moments.times("started")) == 3
    assert len(moments.times("permanent")) == 1


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])
async def test_sync_daemon_that_ignores_the_flag_is_abandoned_and_the_object_released(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    registry = trikopf.OperatorRegistry()
    started = anyio.Event()
    release = threading.Event()
    ended: list[bool] = []

    @trikopf.daemon("kopfexamples", registry=registry, cancellation_timeout=0.5)
    def deaf(**_: Any) -> None:
        anyio.from_thread.run_sync(started.set)
        release.wait(30)  # ignores `stopped`; the test lets it go at the end
        ended.append(True)

    try:
        async with cluster.operator(registry):
            await cluster.create()
            with anyio.fail_after(30):
                await started.wait()
            await cluster.delete()
            await cluster.wait_until_gone(within=30)
            assert ended == []  # the object went while the thread still ran
    finally:
        release.set()
    assert any("abandoned in its thread" in r.getMessage() for r in caplog.records)


async def test_cancellation_backoff_and_timeout_add_up_to_the_graceful_window(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon(
        "kopfexamples", registry=registry, cancellation_backoff=2, cancellation_timeout=3
    )
    async def stubborn(**_: Any) -> None:
        moments.mark("started")
        await moments.sleep_until_cancelled()

    async with cluster.operator(registry):
        await cluster.create()
        await moments.wait_for("started")
        deleted_at = anyio.current_time()
        await cluster.delete()
        await cluster.wait_until_gone()

    assert 5 <= moments.times("cancelled")[0] - deleted_at < 6
