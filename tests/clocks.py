"""Trio's virtual clock for the tests of timing: batch windows, retries, timers, idle timeouts."""

from __future__ import annotations

from typing import Any

import trio.testing


def virtual_time() -> tuple[str, dict[str, Any]]:
    """An ``anyio_backend`` value: Trio on a virtual clock that jumps when every task waits."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
