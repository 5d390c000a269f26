"""The Event poster on its own: batching, folding, rate limiting, posting from threads.

The API side is a recording stand-in for the client's ``post_event`` (the poster's only need);
the end-to-end posting through the real client is covered in ``tests/processing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.to_thread
import attrs
import pytest

import trikopf
from trikopf.actions.posting import EventPoster, set_current_poster
from trikopf.settings import OperatorSettings

BODY = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u"}}


@attrs.define(eq=False)
class Recorder:
    expected: int
    posted: list[tuple[str, str, str]] = attrs.field(factory=list)
    done: anyio.Event = attrs.field(factory=anyio.Event)
    fail: bool = False

    async def post_event(
        self, *, involved: Mapping[str, Any], type: str, reason: str, message: str
    ) -> Any:
        assert involved["name"] == "p"
        self.posted.append((type, reason, message))
        if len(self.posted) >= self.expected:
            self.done.set()
        if self.fail:
            raise RuntimeError("API down")
        return {}


def settings(**posting: Any) -> OperatorSettings:
    s = OperatorSettings()
    for key, value in posting.items():
        setattr(s.posting, key, value)
    return s


async def test_identical_events_in_a_batch_are_folded_into_one() -> None:
    recorder = Recorder(expected=2)
    poster = EventPoster(client=recorder, settings=settings(batch_window=0.01))
    async with anyio.create_task_group() as tg:
        await tg.start(poster.run)
        for _ in range(3):
            poster.post_nowait(BODY, type="Normal", reason="R", message="same")
        poster.post_nowait(BODY, type="Warning", reason="R", message="other")
        with anyio.fail_after(5):
            await recorder.done.wait()
        tg.cancel_scope.cancel()
    assert sorted(recorder.posted) == [("Normal", "R", "same (x3)"), ("Warning", "R", "other")]
    assert poster.posted == 4


async def test_events_over_the_rate_limit_are_dropped_not_queued(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder(expected=2)
    poster = EventPoster(client=recorder, settings=settings(batch_window=0, rate_limit=2))
    for i in range(5):
        poster.post_nowait(BODY, type="Normal", reason="R", message=f"m{i}")
    with caplog.at_level("WARNING", logger="trikopf.posting"):
        await poster.flush()
    assert len(recorder.posted) == 2
    assert poster.dropped == 3
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1  # one line for the lot, not one per Event


async def test_an_event_that_the_rate_cannot_cover_is_dropped_at_once_unless_it_folds() -> None:
    recorder = Recorder(expected=2)
    poster = EventPoster(client=recorder, settings=settings(batch_window=0, rate_limit=2))
    for message in ("m0", "m1", "m2"):
        poster.post_nowait(BODY, type="Normal", reason="R", message=message)
    assert poster.dropped == 1  # the third distinct one: the next batch has two tokens at most
    poster.post_nowait(BODY, type="Normal", reason="R", message="m0")
    assert poster.dropped == 1  # identical to a queued one: folded, not dropped
    await poster.flush()
    assert sorted(recorder.posted) == [("Normal", "R", "m0 (x2)"), ("Normal", "R", "m1")]
    assert (poster.posted, poster.dropped) == (3, 1)


async def test_a_full_queue_drops_new_events() -> None:
    recorder = Recorder(expected=1)
    poster = EventPoster(client=recorder, settings=settings(queue_size=2))
    for i in range(4):
        poster.post_nowait(BODY, type="Normal", reason="R", message=f"m{i}")
    assert poster.dropped == 2


async def test_posting_failures_are_counted_and_never_raised() -> None:
    recorder = Recorder(expected=1, fail=True)
    poster = EventPoster(client=recorder, settings=settings())
    poster.post_nowait(BODY, type="Normal", reason="R", message="m")
    await poster.flush()
    assert poster.failed == 1


async def test_helpers_post_from_worker_threads_through_the_running_poster() -> None:
    recorder = Recorder(expected=2)
    poster = EventPoster(client=recorder, settings=settings(batch_window=0))
    set_current_poster(poster)

    def in_thread() -> None:
        trikopf.info(BODY, reason="Hello", message="from a thread")
        trikopf.warn([BODY], reason="Careful", message="also")

    async with anyio.create_task_group() as tg:
        await tg.start(poster.run)
        await anyio.to_thread.run_sync(in_thread)
        with anyio.fail_after(5):
            await recorder.done.wait()
        tg.cancel_scope.cancel()
    assert sorted(recorder.posted) == [
        ("Normal", "Hello", "from a thread"),
        ("Warning", "Careful", "also"),
    ]


async def test_helpers_outside_an_operator_raise_a_clear_error() -> None:
    set_current_poster(None)
    with pytest.raises(RuntimeError, match="running operator"):
        trikopf.info(BODY, reason="R", message="m")


def test_event_helper_rejects_bad_types_and_reasons() -> None:
    with pytest.raises(ValueError, match="Normal"):
        trikopf.event(BODY, type="Error", reason="R")
    with pytest.raises(ValueError, match="reason"):
        trikopf.event(BODY, type="Normal", reason="")


async def test_exception_helper_appends_the_current_exception() -> None:
    recorder = Recorder(expected=1)
    poster = EventPoster(client=recorder, settings=settings())
    set_current_poster(poster)
    try:
        raise KeyError("size")
    except KeyError:
        trikopf.exception(BODY, message="could not scale")
    await poster.flush()
    assert recorder.posted == [("Warning", "Failure", "could not scale KeyError: 'size'")]
