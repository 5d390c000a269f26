from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

import trikopf

if TYPE_CHECKING:
    from tests.processing.conftest import Harness

FINALIZER = "trikopf.dev/finalizer"


async def test_finalizer_is_added_before_create_handlers_run(harness: Harness) -> None:
    finalizers_seen: list[list[str]] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(name: str, **_: Any) -> None:
        stored = await harness.get(name)
        finalizers_seen.append(stored["metadata"].get("finalizers", []))

    @trikopf.on.delete("kopfexamples", registry=harness.registry)
    def delete_fn(**_: Any) -> None:
        pass

    await harness.create()
    await harness.settle()
    assert finalizers_seen == [[FINALIZER]]


async def test_no_finalizer_without_delete_handlers_or_with_optional_ones(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        pass

    @trikopf.on.delete("kopfexamples", registry=harness.registry, optional=True)
    def delete_fn(**_: Any) -> None:
        pass

    await harness.create()
    await harness.settle()
    assert "finalizers" not in (await harness.get())["metadata"]


async def test_delete_handlers_run_and_then_the_finalizer_is_removed(harness: Harness) -> None:
    order: list[str] = []

    @trikopf.on.delete("kopfexamples", registry=harness.registry)
    async def delete_fn(name: str, reason: str, **_: Any) -> None:
        stored = await harness.get(name)
        assert FINALIZER in stored["metadata"]["finalizers"]  # still held while we run
        order.append(reason)

    await harness.create()
    await harness.settle()
    await harness.delete()
    outcome = await harness.round()
    assert outcome.gone
    assert order == ["delete"]
    assert harness.server.get_object("kopfexamples", "obj", "default") is None


async def test_failing_delete_handler_keeps_the_finalizer_until_it_succeeds(
    harness: Harness,
) -> None:
    attempts: list[int] = []

    @trikopf.on.delete("kopfexamples", registry=harness.registry, backoff=0.01)
    async def delete_fn(retry: int, **_: Any) -> None:
        attempts.append(retry)
        if retry < 2:
            raise RuntimeError("not yet")

    await harness.create()
    await harness.settle()
    await harness.delete()
    first = await harness.round()
    assert first.delay is not None
    assert FINALIZER in (await harness.get())["metadata"]["finalizers"]
    await anyio.sleep(first.delay)
    await harness.settle()
    assert attempts == [0, 1, 2]
    assert harness.server.get_object("kopfexamples", "obj", "default") is None


async def test_other_finalizers_are_kept_when_ours_is_removed(harness: Harness) -> None:
    @trikopf.on.delete("kopfexamples", registry=harness.registry)
    def delete_fn(**_: Any) -> None:
        pass

    await harness.create()
    await harness.settle()
    await harness.patch(
        {"metadata": {"finalizers": [FINALIZER, "example.com/other"]}},
    )
    await harness.delete()
    await harness.settle()
    stored = await harness.get()
    assert stored["metadata"]["finalizers"] == ["example.com/other"]


async def test_a_finalizer_race_is_retried_on_fresh_state(harness: Harness) -> None:
    @trikopf.on.delete("kopfexamples", registry=harness.registry)
    def delete_fn(**_: Any) -> None:
        pass

    await harness.create()
    stale = await harness.get()
    # Another controller adds its finalizer after our copy was taken.
    await harness.patch({"metadata": {"finalizers": ["example.com/other"]}})
    await harness.round(body=stale)
    stored = await harness.get()
    assert sorted(stored["metadata"]["finalizers"]) == sorted(["example.com/other", FINALIZER])


async def test_object_deleted_mid_round_ends_the_round_quietly(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(name: str, **_: Any) -> str:
        await harness.delete(name)  # gone before the round sends its changes
        return "too late"

    await harness.create()
    body = await harness.get()
    outcome = await harness.round(body=body)
    assert outcome.gone
    assert outcome.delay is None


async def test_deleted_events_end_the_object(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.delete("kopfexamples", registry=harness.registry, optional=True)
    def delete_fn(**_: Any) -> None:
        calls.append("delete")

    body = await harness.create()
    outcome = await harness.round(body=body, type="DELETED")
    assert outcome.gone
    assert calls == []


async def test_finalizer_is_removed_when_no_delete_handler_needs_it_any_more(
    harness: Harness,
) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        pass

    await harness.create()
    await harness.patch({"metadata": {"finalizers": [FINALIZER]}})
    await harness.settle()
    assert not (await harness.get())["metadata"].get("finalizers")
