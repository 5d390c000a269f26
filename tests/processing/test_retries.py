"""Retries, backoff, timeouts and error modes, on Trio's mock clock (virtual time).

The handlers here are async: a sync handler runs in a worker thread, and while a thread works
the mock clock sees every task blocked and jumps ahead.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import trikopf
from tests.clocks import virtual_time

if TYPE_CHECKING:
    from tests.processing.conftest import Harness

PROGRESS = "trikopf.dev/progress"
ESSENCE = "trikopf.dev/last-handled-configuration"


@pytest.fixture(params=[pytest.param("trio", id="trio-mockclock")])
def anyio_backend() -> Any:
    return virtual_time()


async def test_temporary_errors_are_retried_after_their_delay(harness: Harness) -> None:
    attempts: list[tuple[int, float]] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(retry: int, **_: Any) -> str:
        attempts.append((retry, anyio.current_time()))
        if retry < 2:
            raise trikopf.TemporaryError("not yet", delay=30)
        return "done"

    await harness.create()
    start = anyio.current_time()
    rounds = await harness.settle()

    assert [r for r, _ in attempts] == [0, 1, 2]
    assert attempts[1][1] - start >= 30
    assert attempts[2][1] - attempts[1][1] >= 30
    assert attempts[2][1] - start < 61  # no extra waiting beyond the delays
    assert rounds == 3
    stored = await harness.get()
    assert stored["status"]["create_fn"] == "done"
    assert PROGRESS not in stored["metadata"]["annotations"]


async def test_progress_is_stored_on_the_object_between_attempts(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(**_: Any) -> None:
        raise trikopf.TemporaryError("wait", delay=10)

    await harness.create()
    outcome = await harness.round()
    assert outcome.delay == pytest.approx(10)
    stored = await harness.get()
    progress = json.loads(stored["metadata"]["annotations"][PROGRESS])
    assert progress["purpose"] == "create"
    assert progress["handlers"]["create_fn"]["retries"] == 1
    assert progress["handlers"]["create_fn"]["message"] == "wait"
    assert "delayed" in progress["handlers"]["create_fn"]
    assert ESSENCE not in stored["metadata"]["annotations"]


async def test_arbitrary_exceptions_are_retried_with_the_handler_backoff(harness: Harness) -> None:
    times: list[float] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry, backoff=7)
    async def create_fn(**_: Any) -> None:
        times.append(anyio.current_time())
        if len(times) < 3:
            raise RuntimeError("boom")

    await harness.create()
    await harness.settle()
    assert len(times) == 3
    assert times[1] - times[0] == pytest.approx(7, abs=0.5)
    assert times[2] - times[1] == pytest.approx(7, abs=0.5)


async def test_permanent_errors_are_not_retried_and_the_cause_completes(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def failing(**_: Any) -> None:
        calls.append("failing")
        raise trikopf.PermanentError("no way")

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def fine(**_: Any) -> str:
        calls.append("fine")
        return "ok"

    await harness.create()
    assert await harness.settle() == 1
    await harness.settle()
    assert calls == ["failing", "fine"]
    stored = await harness.get()
    assert stored["status"] == {"fine": "ok"}
    assert ESSENCE in stored["metadata"]["annotations"]


async def test_retries_are_limited_by_the_retries_option(harness: Harness) -> None:
    calls: list[int] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry, retries=3, backoff=1)
    async def create_fn(retry: int, **_: Any) -> None:
        calls.append(retry)
        raise ValueError("always")

    await harness.create()
    await harness.settle()
    assert calls == [0, 1, 2]
    events = await harness.events()
    assert any(t == "Warning" and "exceeded its 3 retries" in m for t, _, m in events)


async def test_handlers_that_overrun_their_timeout_fail_permanently(harness: Harness) -> None:
    calls: list[float] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry, timeout=60, backoff=25)
    async def create_fn(**_: Any) -> None:
        calls.append(anyio.current_time())
        raise trikopf.TemporaryError("slow", delay=25)

    @trikopf.on.create("kopfexamples", registry=harness.registry, timeout=5)
    async def sleeper(**_: Any) -> None:
        await anyio.sleep(3600)

    await harness.create()
    start = anyio.current_time()
    await harness.settle()
    assert len(calls) == 3  # at 0, 25, 50; at 75 the timeout of 60s has passed
    assert anyio.current_time() - start < 120
    stored = await harness.get()
    assert json.loads(stored["metadata"]["annotations"][ESSENCE]) == {"spec": {"size": 1}}
    events = await harness.events()
    assert any("'sleeper' has timed out after 5s" in m for _, _, m in events)
    assert any("'create_fn' has timed out after 60s" in m for _, _, m in events)


async def test_ignored_errors_count_as_done(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry, errors=trikopf.ErrorsMode.IGNORED)
    async def create_fn(**_: Any) -> None:
        calls.append("x")
        raise RuntimeError("ignored")

    await harness.create()
    assert await harness.settle() == 1
    await harness.settle()
    assert calls == ["x"]


async def test_permanent_error_mode_does_not_retry_arbitrary_exceptions(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.create(
        "kopfexamples", registry=harness.registry, errors=trikopf.ErrorsMode.PERMANENT
    )
    async def create_fn(**_: Any) -> None:
        calls.append("x")
        raise RuntimeError("fatal")

    await harness.create()
    assert await harness.settle() == 1
    assert calls == ["x"]


async def test_a_restarted_operator_continues_the_retries_where_they_stopped(
    harness: Harness,
) -> None:
    seen: list[tuple[int, float]] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(retry: int, started: Any, runtime: Any, **_: Any) -> None:
        seen.append((retry, runtime.total_seconds()))
        if retry < 2:
            raise trikopf.TemporaryError("again", delay=20)

    await harness.create()
    outcome = await harness.round()
    assert outcome.delay == pytest.approx(20)

    harness.forget()  # the operator restarts; only the annotation remembers
    early = await harness.round()
    assert early.delay is not None
    assert 0 < early.delay <= 20.001
    assert len(seen) == 1  # not called before its time

    await anyio.sleep(early.delay)
    await harness.settle()
    assert [r for r, _ in seen] == [0, 1, 2]
    assert seen[2][1] >= 40  # runtime counts from the very first attempt


async def test_a_failing_resume_handler_is_retried_in_later_rounds(harness: Harness) -> None:
    calls: list[tuple[str, int]] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(**_: Any) -> None:
        calls.append(("create", 0))

    @trikopf.on.resume("kopfexamples", registry=harness.registry)
    async def resume_fn(retry: int, reason: str, **_: Any) -> None:
        calls.append((reason, retry))
        if retry < 2:
            raise trikopf.TemporaryError("later", delay=5)

    await harness.create()
    await harness.settle()
    harness.forget()  # a restart: the object is resumed
    first = await harness.round()
    assert first.delay == pytest.approx(5)
    await anyio.sleep(5)  # the same process goes on: the object is no longer "first seen"
    await harness.settle()
    await harness.settle()
    assert calls == [("create", 0), ("resume", 0), ("resume", 1), ("resume", 2)]
    stored = await harness.get()
    assert PROGRESS not in stored["metadata"]["annotations"]
