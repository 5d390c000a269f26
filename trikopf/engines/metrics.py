"""Prometheus metrics of one operator, in a registry of its own (never the global one).

:class:`OperatorMetrics` is the :class:`~trikopf._util.instruments.Instruments` that the
operator installs when ``settings.serving.metrics`` is set. The layers report to it with plain
counter increments; gauges (objects tracked, daemons and timers running) are not updated on the
hot path at all: they are read from the operator's own statistics when ``/metrics`` is scraped.

Exposed (all names start with ``trikopf_``):

=====================================  ======================  =============================
name                                   labels                  what
=====================================  ======================  =============================
``watch_events_total``                 ``watch``               watch events received
``watch_reconnects_total``             ``watch``               streams re-opened after an end
                                                               or a failure
``watch_relists_total``                ``watch``               lists after 410 Gone
``handler_runs_total``                 ``handler, outcome``    calls: success, retry,
                                                               failure, ignored
``handler_retries_total``              ``handler``             calls that will be retried
``handler_duration_seconds``           ``handler``             histogram of call durations
``api_requests_total``                 ``verb, code``          API requests by HTTP status
                                                               (``0``: no response)
``event_to_handler_seconds``           (none)                  histogram: first event of a
                                                               round to the round's start
``objects_tracked``                    (none)                  objects known to the watchers
``objects_busy``                       (none)                  objects with a round ahead now
``daemons_running``                    (none)                  daemon tasks now
``timers_running``                     (none)                  timer tasks now
=====================================  ======================  =============================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from trikopf._util.instruments import Instruments

__all__ = ["CONTENT_TYPE", "GaugeSources", "OperatorMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_DURATION_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


@attrs.define(eq=False)
class GaugeSources:
    """Where the gauges are read from at scrape time (set by the operator as it starts)."""

    objects: Callable[[], tuple[int, int]] | None = None  # (tracked, busy)
    background: Callable[[], tuple[int, int]] | None = None  # (daemons, timers)


class _Gauges:
    """A custom collector: gauges computed from the sources when scraped."""

    def __init__(self, sources: GaugeSources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        tracked = busy = daemons = timers = 0
        if self._sources.objects is not None:
            tracked, busy = self._sources.objects()
        if self._sources.background is not None:
            daemons, timers = self._sources.background()
        yield GaugeMetricFamily(
            "trikopf_objects_tracked", "Objects known to the watchers.", value=tracked
        )
        yield GaugeMetricFamily(
            "trikopf_objects_busy", "Objects with a processing round ahead now.", value=busy
        )
        yield GaugeMetricFamily("trikopf_daemons_running", "Daemon tasks now.", value=daemons)
        yield GaugeMetricFamily("trikopf_timers_running", "Timer tasks now.", value=timers)

    def describe(self) -> list[Metric]:
        return []


class OperatorMetrics(Instruments):
    """The metrics of one operator; :meth:`render` gives the Prometheus text exposition.

    Starts no task. Recording methods run in the operator's tasks; :meth:`render` may run in
    any task (prometheus_client guards its values with locks).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sources = GaugeSources()
        r = self.registry
        self._events = Counter(
            "trikopf_watch_events", "Watch events received.", ["watch"], registry=r
        )
        self._reconnects = Counter(
            "trikopf_watch_reconnects",
            "Watch streams opened again after they ended or failed.",
            ["watch"],
            registry=r,
        )
        self._relists = Counter(
            "trikopf_watch_relists",
            "Lists made again because the resourceVersion expired (410 Gone).",
            ["watch"],
            registry=r,
        )
        self._runs = Counter(
            "trikopf_handler_runs",
            "Handler calls by handler and outcome.",
            ["handler", "outcome"],
            registry=r,
        )
        self._retries = Counter(
            "trikopf_handler_retries",
            "Handler calls that failed and will be retried.",
            ["handler"],
            registry=r,
        )
        self._durations = Histogram(
            "trikopf_handler_duration_seconds",
            "How long handler calls took.",
            ["handler"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self._requests = Counter(
            "trikopf_api_requests",
            "Kubernetes API requests by verb and HTTP status (0: no response).",
            ["verb", "code"],
            registry=r,
        )
        self._latency = Histogram(
            "trikopf_event_to_handler_seconds",
            "From the arrival of a round's first event to the start of the round.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        r.register(_Gauges(self.sources))
        # labels() takes a lock and builds a tuple each time: resolve each child once.
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        """The current values in the Prometheus text format."""
        return bytes(generate_latest(self.registry))

    # --- Instruments ---------------------------------------------------------------------

    def watch_events(self, watch: str) -> Callable[[], None]:
        inc: Callable[[], None] = self._child(self._events, watch).inc
        return inc

    def watch_reconnected(self, watch: str) -> None:
        self._child(self._reconnects, watch).inc()

    def watch_relisted(self, watch: str) -> None:
        self._child(self._relists, watch).inc()

    def api_request(self, verb: str, code: int) -> None:
        self._child(self._requests, verb, str(code)).inc()

    def round_started(self, waited: float) -> None:
        self._latency.observe(max(waited, 0.0))

    def handler_finished(self, handler_id: str, outcome: str, seconds: float) -> None:
        self._child(self._runs, handler_id, outcome).inc()
        self._child(self._durations, handler_id).observe(max(seconds, 0.0))
        if outcome == "retry":
            self._child(self._retries, handler_id).inc()
