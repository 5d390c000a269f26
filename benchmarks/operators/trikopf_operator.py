"""trikopf's side of every benchmark workload: ``python -m trikopf --standalone -A trikopf_operator.py``.

The same handlers as ``kopf_operator.py``, written with trikopf's decorators.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio

import trikopf.on

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import WORKLOAD, reporter

RESOURCE = "kopfexamples.kopf.dev"

if WORKLOAD == "event":

    @trikopf.on.event(RESOURCE)
    async def count_event(**_: Any) -> None:
        reporter.hit()

elif WORKLOAD == "latency":

    @trikopf.on.event(RESOURCE)
    async def measure_event(body: Any, **_: Any) -> None:
        reporter.latency(body)

elif WORKLOAD in ("create", "idle"):

    @trikopf.on.create(RESOURCE)
    async def create_fn(**_: Any) -> dict[str, Any]:
        reporter.hit()
        return {"handled": True}

elif WORKLOAD == "daemon":

    @trikopf.on.daemon(RESOURCE)
    async def daemon_fn(**_: Any) -> None:
        reporter.hit()
        await anyio.sleep_forever()

elif WORKLOAD == "resume":

    @trikopf.on.resume(RESOURCE)
    async def resume_fn(**_: Any) -> None:
        reporter.hit()

else:
    raise SystemExit(f"unknown BENCH_WORKLOAD={WORKLOAD!r}")

# An experiment, off by default: BENCH_SETTINGS="processing.idle_timeout=0.5,..." sets numeric
# operator settings at startup, to measure what a setting costs or saves.
if os.environ.get("BENCH_SETTINGS"):

    @trikopf.on.startup()
    async def _bench_settings(settings: Any, **_: Any) -> None:
        for item in os.environ["BENCH_SETTINGS"].split(","):
            path, value = item.split("=")
            group, name = path.split(".")
            setattr(getattr(settings, group), name, float(value) if "." in value else int(value))
