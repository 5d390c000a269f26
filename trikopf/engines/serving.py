"""The operator's own HTTP endpoints: ``/healthz`` (liveness), ``/readyz`` and ``/metrics``.

Served by :func:`serve_endpoints` on the project's HTTP server
(:mod:`trikopf._util.http_server`) inside the operator's task group:

- the liveness path (``/healthz`` by default) answers ``200`` with the probes' results as JSON,
  ``500`` when a probe failed (results are cached, see :class:`ProbeRunner`);
- ``/readyz`` answers ``503`` until every watcher has finished its first list, ``200`` after,
  and ``503`` again once the operator is stopping;
- the metrics path (``/metrics`` by default) answers the Prometheus text format.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

import anyio
import anyio.abc
import attrs

from trikopf._util.http_server import Request, Response, serve_http
from trikopf.engines.activities import ProbeRunner
from trikopf.engines.metrics import CONTENT_TYPE, OperatorMetrics
from trikopf.settings import ServingSettings

__all__ = ["Endpoints", "parse_endpoint", "serve_endpoints"]

logger = logging.getLogger("trikopf.serving")


def parse_endpoint(url: str, *, what: str, default_path: str) -> tuple[str, int, str]:
    """``http://HOST:PORT/PATH`` → ``(host, port, path)``; a clear ``ValueError`` otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{what} must look like http://HOST:PORT/PATH, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{what} has a bad port: {url!r}") from None
    if port is None:
        raise ValueError(f"{what} needs a port (http://HOST:PORT/PATH), got {url!r}")
    return parts.hostname, port, parts.path or default_path


def _json(status: int, data: Any) -> Response:
    body = json.dumps(data, default=str, sort_keys=True).encode() + b"\n"
    return Response(status=status, headers=[("Content-Type", "application/json")], body=body)


@attrs.define(eq=False)
class Endpoints:
    """The request handler of the endpoints, and the state they report.

    ``ready`` is set by the operator once its watchers have listed and cleared when it stops.
    ``addresses`` lists ``(host, port)`` of the listeners once they are bound.
    """

    probes: ProbeRunner | None = None
    metrics: OperatorMetrics | None = None
    liveness_path: str = "/healthz"
    metrics_path: str = "/metrics"
    ready: bool = False
    addresses: list[tuple[str, int]] = attrs.field(factory=list)

    async def handle(self, request: Request) -> Response:
        path = request.path
        if request.method not in ("GET", "HEAD"):
            return _json(405, {"error": "only GET and HEAD are served here"})
        if self.probes is not None and path == self.liveness_path:
            report = await self.probes.check()
            status = 200 if report.healthy else 500
            return _json(status, {"ok": report.healthy, "probes": dict(report.results)})
        if path == "/readyz":
            return _json(200 if self.ready else 503, {"ready": self.ready})
        if self.metrics is not None and path == self.metrics_path:
            return Response(
                status=200,
                headers=[("Content-Type", CONTENT_TYPE)],
                body=self.metrics.render(),
            )
        return _json(404, {"error": f"nothing at {path}"})


def plan_listeners(settings: ServingSettings, endpoints: Endpoints) -> list[tuple[str, int]]:
    """Set the paths on ``endpoints`` and return the ``(host, port)`` pairs to listen on."""
    listeners: list[tuple[str, int]] = []
    if settings.liveness:
        host, port, path = parse_endpoint(
            settings.liveness, what="the liveness endpoint", default_path="/healthz"
        )
        endpoints.liveness_path = path
        listeners.append((host, port))
    if settings.metrics:
        host, port, path = parse_endpoint(
            settings.metrics, what="the metrics endpoint", default_path="/metrics"
        )
        endpoints.metrics_path = path
        if (host, port) not in listeners:
            listeners.append((host, port))
    return listeners


async def serve_endpoints(
    endpoints: Endpoints,
    listeners: list[tuple[str, int]],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``endpoints`` on every listener until cancelled.

    Starts one server task per listener (each with its connection tasks) in a task group of
    its own; reports started once all are bound (``endpoints.addresses`` then holds the bound
    ports). Returns only when cancelled (the operator's exit).
    """
    async with anyio.create_task_group() as tg:
        for host, port in listeners:
            try:
                bound = await tg.start(
                    _serve_one, endpoints, host, port, name=f"endpoints:{host}:{port}"
                )
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"cannot listen on {host}:{port} for the health and metrics endpoints: "
                    f"{exc.strerror or exc}",
                ) from exc
            endpoints.addresses.append((host, bound))
            logger.info("Serving health and metrics on http://%s:%d.", host, bound)
        task_status.started()


async def _serve_one(
    endpoints: Endpoints,
    host: str,
    port: int,
    *,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    await serve_http(endpoints.handle, host=host, port=port, task_status=task_status)
