"""The operator's /healthz, /readyz and /metrics endpoints, scraped over real HTTP."""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import trikopf
from tests.clocks import virtual_time
from tests.engines.conftest import NAMESPACE, Cluster, Moments, quiet_settings
from tests.ports import free_port


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


class _LogSignal(logging.Handler):
    """Sets an event when a log line containing ``text`` is emitted (in the loop's thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def serving_started() -> Iterator[_LogSignal]:
    signal = _LogSignal("Serving health and metrics")
    target = logging.getLogger("trikopf.serving")
    target.addHandler(signal)
    old = target.level
    target.setLevel(logging.INFO)
    try:
        yield signal
    finally:
        target.removeHandler(signal)
        target.setLevel(old)


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` with these labels in a Prometheus text (0 if none)."""
    return sum(
        float(s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_readyz_turns_ready_after_the_first_list_and_healthz_reports_probes(
    cluster: Cluster, serving_started: _LogSignal
) -> None:
    registry = trikopf.OperatorRegistry()
    calls: list[float] = []
    broken: list[bool] = [False]

    @trikopf.on.probe(registry=registry)
    async def database(**_: Any) -> dict[str, str]:
        calls.append(anyio.current_time())
        if broken[0]:
            raise ConnectionError("the database went away")
        return {"db": "up"}

    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry)
    async def slow_to_stop(stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        moments.mark("started")
        await stopped.wait()
        moments.mark("asked")
        await anyio.sleep(3)

    port = free_port()
    settings = quiet_settings()
    settings.serving.liveness = f"http://127.0.0.1:{port}/healthz"
    settings.serving.probe_cache = 10
    stop = anyio.Event()
    ready = anyio.Event()
    cluster.server.faults.pause()  # the first list cannot finish yet
    operate = functools.partial(
        trikopf.operate,
        registry,
        settings=settings,
        connection=cluster.connection,
        namespaces=[NAMESPACE],
        stop_flag=stop,
        ready_flag=ready,
        handle_signals=False,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(operate)
        with anyio.fail_after(30):
            await serving_started.event.wait()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.get("/readyz")
            assert response.status_code == 503

            cluster.server.faults.resume()
            with anyio.fail_after(30):
                await ready.wait()
            response = await http.get("/readyz")
            assert response.status_code == 200
            assert response.json() == {"ready": True}

            healthy = await http.get("/healthz")
            assert healthy.status_code == 200
            assert healthy.json() == {"ok": True, "probes": {"database": {"db": "up"}}}
            await http.get("/healthz")
            assert len(calls) == 1  # cached for probe_cache seconds

            broken[0] = True
            await anyio.sleep(11)
            failing = await http.get("/healthz")
            assert failing.status_code == 500
            assert "the database went away" in failing.json()["probes"]["database"]["error"]
            assert len(calls) == 2

            assert (await http.get("/nothing")).status_code == 404

            # While it stops (its daemon takes 3 seconds), it is no longer ready.
            await cluster.create()
            await moments.wait_for("started")
            stop.set()
            await moments.wait_for("asked")
            stopping = await http.get("/readyz")
            assert stopping.status_code == 503


async def test_metrics_are_scraped_and_the_counters_move_as_handlers_run(
    cluster: Cluster, serving_started: _LogSignal
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(retry: int, **_: Any) -> str:
        if retry == 0:
            raise trikopf.TemporaryError("once more", delay=1)
        return "created"

    @trikopf.daemon("kopfexamples", registry=registry)
    async def monitor(stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        moments.mark("daemon")
        await stopped.wait()

    @trikopf.timer("kopfexamples", registry=registry, interval=100)
    async def tick(**_: Any) -> None:
        moments.mark("timer")

    port = free_port()
    settings = quiet_settings()
    settings.serving.metrics = f"http://127.0.0.1:{port}/metrics"
    settings.watching.server_timeout = 20
    async with (
        cluster.operator(registry, settings=settings),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        before = (await http.get("/metrics")).text
        assert sample(before, "trikopf_handler_runs_total") == 0

        await cluster.create("one")
        await cluster.wait_for(
            lambda b: b is not None and b.get("status", {}).get("create_fn") == "created",
            "one",
        )
        await moments.wait_for("daemon")
        await moments.wait_for("timer")
        scraped = await http.get("/metrics")
        assert scraped.headers["content-type"].startswith("text/plain")
        first = scraped.text
        runs = "trikopf_handler_runs_total"
        assert sample(first, runs, handler="create_fn", outcome="retry") == 1
        assert sample(first, runs, handler="create_fn", outcome="success") == 1
        assert sample(first, "trikopf_handler_retries_total", handler="create_fn") == 1
        durations = "trikopf_handler_duration_seconds_count"
        assert sample(first, durations, handler="create_fn") == 2
        assert sample(first, runs, handler="tick", outcome="success") == 1
        assert sample(first, "trikopf_daemons_running") == 1
        assert sample(first, "trikopf_timers_running") == 1
        assert sample(first, "trikopf_objects_tracked") == 1
        assert sample(first, "trikopf_watch_events_total") >= 1
        assert sample(first, "trikopf_api_requests_total", verb="PATCH", code="200") >= 1
        assert sample(first, "trikopf_api_requests_total", verb="WATCH", code="200") >= 1
        assert sample(first, "trikopf_event_to_handler_seconds_count") >= 1

        # A 410 on the next watch request: the watcher lists again.
        cluster.server.faults.fail_next(status=410, watch=True)
        await cluster.create("two")
        await moments.wait_for("daemon", 2)
        await anyio.sleep(30)  # past the server's timeout: the stream is reopened
        second = (await http.get("/metrics")).text
        assert sample(second, "trikopf_daemons_running") == 2
        assert sample(second, "trikopf_objects_tracked") == 2
        assert sample(second, runs, handler="create_fn", outcome="success") == 2
        assert sample(second, "trikopf_watch_events_total") > sample(
            first, "trikopf_watch_events_total"
        )
        assert sample(second, "trikopf_watch_reconnects_total") >= 1
        assert sample(second, "trikopf_watch_relists_total") >= 1


async def test_idle_objects_hold_no_worker_whether_their_daemons_run_or_not(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()

    @trikopf.daemon("kopfexamples", registry=registry, labels={"run": "yes"})
    async def accompany(stopped: trikopf.AsyncDaemonStopped, **_: Any) -> None:
        moments.mark("started")
        await stopped.wait()
        moments.mark("stopped")

    port = free_port()
    settings = quiet_settings()
    settings.serving.metrics = f"http://127.0.0.1:{port}/metrics"
    settings.processing.idle_timeout = 5
    async with (
        cluster.operator(registry, settings=settings),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        await cluster.create("with-daemon", labels={"run": "yes"})
        await cluster.create("without")
        await moments.wait_for("started")
        await anyio.sleep(30)  # far beyond the idle timeout
        text = (await http.get("/metrics")).text
        assert sample(text, "trikopf_objects_tracked") == 2
        # The daemon runs on in the object's scope; the object's worker has gone idle.
        assert sample(text, "trikopf_objects_busy") == 0
        assert sample(text, "trikopf_daemons_running") == 1

        await cluster.patch({"metadata": {"labels": {"run": "no"}}}, "with-daemon")
        await moments.wait_for("stopped")
        await anyio.sleep(30)
        text = (await http.get("/metrics")).text
        assert sample(text, "trikopf_objects_busy") == 0
        assert sample(text, "trikopf_daemons_running") == 0


async def test_a_busy_port_fails_the_start_with_a_clear_message(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        pass

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = quiet_settings()
        settings.serving.liveness = f"http://127.0.0.1:{port}/healthz"
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port} for the health"):
            async with cluster.operator(registry, settings=settings):
                pytest.fail("the operator must not start")
