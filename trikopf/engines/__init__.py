"""Engines that run beside the processing rounds: daemons, timers, activities, health, metrics.

Layered above :mod:`trikopf.actions` and under :mod:`trikopf.reactor`, which calls them.
"""

from __future__ import annotations

from trikopf.engines.background import BackgroundEngine, BackgroundStatistics, DaemonPatch
from trikopf.engines.stopping import (
    AsyncDaemonStopped,
    DaemonStopped,
    StopReason,
    SyncDaemonStopped,
)

__all__ = [
    "AsyncDaemonStopped",
    "BackgroundEngine",
    "BackgroundStatistics",
    "DaemonPatch",
    "DaemonStopped",
    "StopReason",
    "SyncDaemonStopped",
]
