"""Timers: periodic calls per object; `idle` waits until the object has been left alone.

`quiet_fn` runs every second, but only once the object's spec, labels and annotations have not
changed for 2 seconds: a burst of edits postpones it. `heartbeat_fn` keeps to a fixed grid
(`sharp=True`) however long each call takes. Results land in `status.<timer id>`.
"""

from __future__ import annotations

import datetime
from typing import Any

import trikopf


@trikopf.timer("kopfexamples", interval=1, idle=2)
def quiet_fn(spec: trikopf.Spec, logger: trikopf.Logger, **_: Any) -> dict[str, Any]:
    logger.info("The object has been left alone for 2 seconds.")
    return {"items": len(spec.get("items", [])), "field": spec.get("field")}


@trikopf.timer("kopfexamples", interval=2, sharp=True, initial_delay=0.5)
async def heartbeat_fn(**_: Any) -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
