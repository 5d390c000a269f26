"""Probes: what the liveness endpoint reports, next to readiness and Prometheus metrics.

Run with `--liveness http://0.0.0.0:8080/healthz --metrics http://0.0.0.0:8080/metrics`, or set
the URLs in a startup handler as below (used when the command line gives none). `/healthz` calls
the probes (their results are reused for `settings.serving.probe_cache` seconds) and answers 500
when one fails; `/readyz` answers 200 once every watcher has listed its objects.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import trikopf


@trikopf.on.startup()
def configure(settings: trikopf.OperatorSettings, **_: Any) -> None:
    listen = os.environ.get("EXAMPLE_LISTEN", "127.0.0.1:8080")
    if settings.serving.liveness is None:
        settings.serving.liveness = f"http://{listen}/healthz"
    if settings.serving.metrics is None:
        settings.serving.metrics = f"http://{listen}/metrics"
    settings.serving.probe_cache = 5


@trikopf.on.probe(id="now")
def current_time(**_: Any) -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@trikopf.on.probe(id="objects")
def object_count(memo: trikopf.Memo, **_: Any) -> int:
    return len(memo.get("seen", ()))


@trikopf.on.event("kopfexamples")
def remember(memo: trikopf.Memo, name: str, type: str | None, **_: Any) -> None:
    seen = memo.setdefault("seen", set())
    if type == "DELETED":
        seen.discard(name)
    else:
        seen.add(name)
