"""Kopf-style daemons and timers, unchanged but for the import line."""

import asyncio  # noqa: F401 - Kopf operators import it; nothing here needs it

import trikopf as kopf


@kopf.daemon("kopfexamples", cancellation_timeout=5)
async def monitor(stopped: kopf.DaemonStopped, name, memo: kopf.Memo, logger, **_):
    memo.setdefault("started", []).append(name)
    while not stopped:
        await stopped.wait(10)
    memo.setdefault("stopped", []).append((name, stopped.reason))


@kopf.daemon("kopfexamples", id="sync-monitor")
def sync_monitor(stopped, name, memo, **_):
    while not stopped:
        stopped.wait(10)
    memo.setdefault("sync_stopped", []).append((name, stopped.reason))


@kopf.timer("kopfexamples", interval=0.2)
def tick(name, memo, **_):
    memo["ticks"] = memo.get("ticks", 0) + 1
    return {"ticked": True}
