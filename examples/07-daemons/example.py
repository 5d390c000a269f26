"""Daemons: a long-running task per object that keeps a status field current.

The async daemon wakes every `spec.period` seconds (1 by default), writes what it sees into
`status.monitor` and flushes its patch right away. The sync daemon runs in a thread of its own
and only logs; it checks `stopped` so it can leave when asked. Deleting the object sets both
flags; the object's finalizer is released once both daemons have returned.
"""

from __future__ import annotations

from typing import Any

import trikopf


@trikopf.daemon("kopfexamples", cancellation_timeout=5)
async def monitor(
    stopped: trikopf.AsyncDaemonStopped,
    spec: trikopf.Spec,
    patch: trikopf.DaemonPatch,
    logger: trikopf.Logger,
    **_: Any,
) -> None:
    checks = 0
    while not stopped:
        checks += 1
        # `spec` is a live view: it shows the object as it is now, not as it was at the start.
        patch.status["monitor"] = {"checks": checks, "items": len(spec.get("items", []))}
        await patch.flush()
        await stopped.wait(float(spec.get("period", 1)))
    logger.info(f"The monitor stops after {checks} checks: {stopped.reason}.")


@trikopf.daemon("kopfexamples", initial_delay=1)
def sync_monitor(
    stopped: trikopf.SyncDaemonStopped, name: str, logger: trikopf.Logger, **_: Any
) -> None:
    while not stopped:
        logger.debug(f"{name} is still there.")
        stopped.wait(10)  # a sleep that ends as soon as the daemon is asked to stop
