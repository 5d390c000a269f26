"""Kopf's side of every benchmark workload: ``kopf run --standalone -A kopf_operator.py``.

The workload comes from ``BENCH_WORKLOAD`` (event, latency, create, idle, daemon, resume); see
``_report.py`` for how the handler calls are reported.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import kopf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import WORKLOAD, reporter

RESOURCE = ("kopf.dev", "v1", "kopfexamples")

if WORKLOAD == "event":

    @kopf.on.event(*RESOURCE)
    async def count_event(**_: Any) -> None:
        reporter.hit()

elif WORKLOAD == "latency":

    @kopf.on.event(*RESOURCE)
    async def measure_event(body: Any, **_: Any) -> None:
        reporter.latency(body)

elif WORKLOAD in ("create", "idle"):

    @kopf.on.create(*RESOURCE)
    async def create_fn(**_: Any) -> dict[str, Any]:
        reporter.hit()
        return {"handled": True}

elif WORKLOAD == "daemon":

    @kopf.daemon(*RESOURCE)
    async def daemon_fn(stopped: Any, **_: Any) -> None:
        reporter.hit()
        while not stopped:
            await asyncio.sleep(3600)

elif WORKLOAD == "resume":

    @kopf.on.resume(*RESOURCE)
    async def resume_fn(**_: Any) -> None:
        reporter.hit()

else:
    raise SystemExit(f"unknown BENCH_WORKLOAD={WORKLOAD!r}")
