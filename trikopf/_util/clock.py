"""The event loop's clock without AnyIO's per-call backend lookup.

``anyio.current_time()`` finds the backend's class on every call (sniffio, then a registry
lookup); on the change-handling path it is read several times per object. Here the library name
from sniffio picks Trio's clock or the asyncio loop's directly, which is what AnyIO itself reads.
Both functions are synchronous and no checkpoints; call them from inside an event loop.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import trio.lowlevel
from sniffio import current_async_library

__all__ = ["current_time", "wall_now"]

# The clock (Trio) or loop (asyncio) the wall-clock anchor belongs to, and its offset.
_anchor: tuple[object, float] | None = None


def current_time() -> float:
    """The event loop's clock in seconds, as ``anyio.current_time()`` reads it."""
    if current_async_library() == "trio":
        return trio.lowlevel.current_clock().current_time()
    return anyio.current_time()


def wall_now() -> float:
    """Seconds since the epoch, advancing with the event loop's clock.

    The epoch offset is anchored once per clock (Trio) or loop (asyncio): time in a loop with a
    mock clock is virtual, and a wall-clock jump after the anchor does not move it.
    """
    global _anchor
    owner: object
    if current_async_library() == "trio":
        clock = trio.lowlevel.current_clock()
        owner, loop_now = clock, clock.current_time()
    else:
        loop = asyncio.get_running_loop()
        owner, loop_now = loop, loop.time()
    anchor = _anchor
    if anchor is None or anchor[0] is not owner:
        anchor = _anchor = (owner, time.time() - loop_now)
    return anchor[1] + loop_now
