"""Kopf-style daemons and timers, unchanged but for the import line."""

import asyncio  # noqa: F401 - Kopf operators import it; nothing here needs it

import trikopf as kopf


@kopf.on.startup()
def remember(memo: kopf.Memo, **_):
    # Every object's memo is a shallow copy of this one: these lists are shared by all.
    memo.started, memo.stopped, memo.sync_stopped, memo.ticks = [], [], [], []


@kopf.daemon("kopfexamples", cancellation_timeout=5)
async def monitor(stopped: kopf.DaemonStopped, name, memo: kopf.Memo, logger, **_):
    memo.started.append(name)
    while not stopped:
        await stopped.wait(10)
    memo.stopped.append((name, stopped.reason))


@kopf.daemon("kopfexamples", id="sync-monitor")
def sync_monitor(stopped, name, memo, **_):
    while not stopped:
        stopped.wait(10)
    memo.sync_stopped.append((name, stopped.reason))


@kopf.timer("kopfexamples", interval=0.2)
def tick(name, memo, **_):
    memo.ticks.append(name)
    return {"ticked": True}
