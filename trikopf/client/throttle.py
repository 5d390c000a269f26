"""Retry delays (exponential backoff with jitter) and the client-side token-bucket limiter."""

from __future__ import annotations

import math
import random

import anyio
import anyio.lowlevel
import attrs

__all__ = ["RateLimiter", "backoff_delay"]


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float,
    rng: random.Random | None = None,
) -> float:
    """The delay before retry number ``attempt`` (0-based): ``base·2^attempt`` up to ``cap``.

    ``jitter`` is the fraction of that delay that is randomised (0 = none, 1 = "full jitter"),
    so that many clients failing together do not retry together.
    """
    delay = min(cap, base * (2.0 ** min(attempt, 62)))
    spread = (rng or random).random() * jitter * delay
    return delay - spread


@attrs.define(eq=False)
class RateLimiter:
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``.

    :meth:`acquire` returns at once while tokens are left, else sleeps until one is; waiters
    are served one at a time in arrival order (an AnyIO lock). ``rate=math.inf`` disables it.
    Cancelling a waiting :meth:`acquire` takes no token.
    """

    rate: float
    burst: int = 1
    _tokens: float = attrs.field(init=False)
    _updated: float | None = attrs.field(default=None, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limiter needs rate > 0 and burst >= 1")
        self._tokens = float(self.burst)

    def _refill(self) -> float:
        now = anyio.current_time()
        if self._updated is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        return now

    async def acquire(self) -> None:
        """Take one token, sleeping as long as needed (a checkpoint either way)."""
        if math.isinf(self.rate):
            await anyio.lowlevel.checkpoint()
            return
        async with self._lock:
            self._refill()
            # A margin against float rounding: a wait of 1e-17 s could never advance a clock.
            while self._tokens < 1.0 - 1e-9:
                await anyio.sleep((1.0 - self._tokens) / self.rate)
                self._refill()
            self._tokens = max(0.0, self._tokens - 1.0)
