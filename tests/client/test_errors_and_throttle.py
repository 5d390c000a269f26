"""The error tree's mapping from HTTP answers, backoff delays and the token bucket."""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
import trio.testing

from tests.clocks import virtual_time
from trikopf.client import (
    AlreadyExists,
    ApiError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from trikopf.client.errors import error_from_status
from trikopf.client.throttle import RateLimiter, backoff_delay


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


def status(code: int, reason: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": f"{reason} happened",
        **extra,
    }


@pytest.mark.parametrize(
    ("code", "reason", "cls"),
    [
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "Conflict", Conflict),
        (409, "AlreadyExists", AlreadyExists),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", TooManyRequests),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
        (418, "Teapot", ApiError),
    ],
)
def test_each_status_code_maps_to_its_error(code: int, reason: str, cls: type[ApiError]) -> None:
    error = error_from_status(code, status(code, reason), method="GET", path="/api/v1/pods")
    assert type(error) is cls
    assert error.code == code
    assert error.status.reason == reason
    assert str(error) == f"{code} {reason}: {reason} happened (GET /api/v1/pods)"


def test_retry_after_comes_from_the_header_or_the_status_details() -> None:
    from_header = error_from_status(429, status(429, "TooManyRequests"), retry_after="3")
    assert isinstance(from_header, TooManyRequests)
    assert from_header.retry_after == 3.0
    details = status(429, "TooManyRequests", details={"retryAfterSeconds": 5})
    from_details = error_from_status(429, details)
    assert isinstance(from_details, TooManyRequests)
    assert from_details.retry_after == 5.0


def test_a_body_that_is_not_a_status_still_gives_a_typed_error() -> None:
    error = error_from_status(502, None, text="<html>bad gateway</html>")
    assert isinstance(error, ServerError)
    assert error.code == 502
    assert "bad gateway" in str(error)


def test_backoff_grows_exponentially_up_to_the_cap_within_the_jitter() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        ideal = min(30.0, 0.5 * 2**attempt)
        delay = backoff_delay(attempt, base=0.5, cap=30.0, jitter=0.5, rng=rng)
        assert ideal * 0.5 <= delay <= ideal
    assert backoff_delay(3, base=1, cap=100, jitter=0) == 8


def test_a_rate_limiter_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimiter(0)


async def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(rate=4, burst=3)
    started = trio.current_time()
    for _ in range(3):
        await limiter.acquire()
    assert trio.current_time() == started  # the burst is free
    for _ in range(8):
        await limiter.acquire()
    assert trio.current_time() - started == pytest.approx(2.0)  # then 4 per second


async def test_concurrent_waiters_share_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=1)
    done: list[float] = []

    async def worker() -> None:
        for _ in range(5):
            await limiter.acquire()
            done.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(worker)
    assert len(done) == 20
    assert max(done) - min(done) == pytest.approx(1.9)
