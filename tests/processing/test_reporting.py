from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import attrs

import trikopf
from trikopf.processing import handle_raw_event
from trikopf.structs import WatchEvent

if TYPE_CHECKING:
    from tests.processing.conftest import Harness


async def test_handler_outcomes_are_posted_as_kubernetes_events(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        pass

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def broken(**_: Any) -> None:
        raise trikopf.PermanentError("bad spec")

    await harness.create()
    await harness.settle()
    events = await harness.events()
    assert ("Normal", "Success", "Handler 'create_fn' succeeded.") in events
    assert ("Warning", "Error", "Handler 'broken' failed permanently: bad spec.") in events


async def test_posting_can_be_switched_off(harness: Harness) -> None:
    harness.settings.posting.enabled = False

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        pass

    await harness.create()
    await harness.settle()
    assert await harness.events() == []


async def test_info_warn_and_event_helpers_post_about_any_object(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(body: trikopf.Body, logger: trikopf.Logger, **_: Any) -> None:
        trikopf.info(body, reason="Hello", message="from a thread")
        trikopf.warn(body, reason="Careful", message="mind the gap")
        trikopf.event(body, type="Normal", reason="Custom", message="x")
        logger.info("a log line")

    await harness.create()
    await harness.settle()
    events = await harness.events()
    assert ("Normal", "Hello", "from a thread") in events
    assert ("Warning", "Careful", "mind the gap") in events
    assert ("Normal", "Custom", "x") in events
    assert ("Normal", "Logging", "a log line") in events


async def test_junk_results_fail_the_handler_with_a_clear_message(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> object:
        return object()

    await harness.create()
    assert await harness.settle() == 1
    stored = await harness.get()
    assert "create_fn" not in stored.get("status", {})
    events = await harness.events()
    assert any(
        "returned object" in m and "cannot be stored in status.create_fn" in m for _, _, m in events
    )


async def test_results_go_to_the_status_subresource_when_there_is_one(
    status_harness: Harness,
) -> None:
    h = status_harness

    @trikopf.on.create("kopfexamples", registry=h.registry)
    def create_fn(**_: Any) -> dict[str, int]:
        return {"replicas": 3}

    await h.create()
    await h.settle()
    stored = await h.get()
    assert stored["status"]["create_fn"] == {"replicas": 3}
    assert "trikopf.dev/last-handled-configuration" in stored["metadata"]["annotations"]
    assert len(h.server.requests.matching("PATCH", "*/kopfexamples/obj/status")) == 1
    assert h.patches() == 2


async def test_sync_handlers_run_in_worker_threads_and_async_ones_in_the_loop(
    harness: Harness,
) -> None:
    threads: dict[str, int] = {}

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def sync_fn(**_: Any) -> None:
        threads["sync"] = threading.get_ident()

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def async_fn(**_: Any) -> None:
        threads["async"] = threading.get_ident()

    await harness.create()
    await harness.settle()
    assert threads["async"] == threading.get_ident()
    assert threads["sync"] != threading.get_ident()


async def test_handlers_receive_kopf_kwargs(harness: Harness) -> None:
    got: dict[str, Any] = {}

    @trikopf.on.create("kopfexamples", registry=harness.registry, param={"p": 1})
    def create_fn(**kwargs: Any) -> None:
        got.update(kwargs)

    await harness.create(labels={"l": "v"}, annotations={"a": "b"})
    await harness.settle()
    assert got["name"] == "obj"
    assert got["namespace"] == "default"
    assert got["uid"] == got["meta"]["uid"]
    assert got["labels"] == {"l": "v"}
    assert got["annotations"] == {"a": "b"}
    assert got["spec"] == {"size": 1}
    assert got["body"]["kind"] == "KopfExample"
    assert got["status"] == {}
    assert got["reason"] == "create"
    assert got["param"] == {"p": 1}
    assert got["retry"] == 0
    assert got["runtime"].total_seconds() >= 0
    assert got["started"] is not None
    assert got["resource"] == harness.resource
    assert got["memo"] is harness.states["obj"].memo  # the object's copy of the operator's memo
    assert isinstance(got["patch"], trikopf.Patch)
    assert isinstance(got["diff"], trikopf.Diff)


@attrs.frozen
class Size:
    size: int


async def test_a_typed_spec_is_structured_and_a_bad_one_fails_clearly(harness: Harness) -> None:
    sizes: list[int] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(spec: Size, **_: Any) -> None:
        sizes.append(spec.size)

    await harness.create("good", spec={"size": 4})
    await harness.create("bad", spec={"size": "many"})
    await harness.settle("good")
    await harness.settle("bad")
    assert sizes == [4]
    events = await harness.events("bad")
    assert any("does not fit Size" in m and "spec.size" in m for _, _, m in events)


async def test_stale_bodies_older_than_our_own_patch_are_skipped(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        calls.append("create")

    stale = await harness.create()
    await harness.round()
    # The watch may still deliver the bodies from before our patch: they must not re-create.
    outcome = await harness.round(body=stale)
    assert outcome.delay is None
    assert calls == ["create"]


async def test_event_handlers_see_every_raw_event_and_their_errors_are_logged(
    harness: Harness,
) -> None:
    seen: list[tuple[str, str]] = []

    @trikopf.on.event("kopfexamples", registry=harness.registry)
    def on_event(event: dict[str, Any], type: str, name: str, **_: Any) -> None:
        seen.append((type, name))
        raise RuntimeError("ignored")

    @trikopf.on.event("kopfexamples", registry=harness.registry, labels={"x": "y"})
    def filtered(**_: Any) -> None:
        seen.append(("filtered", ""))

    body = await harness.create()
    for type_ in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        await handle_raw_event(
            registry=harness.registry,
            settings=harness.settings,
            resource=harness.resource,
            event=WatchEvent(type=type_, object=body),
            client=harness.client,
            memo=harness.memo,
            poster=harness.poster,
        )
    assert seen == [("ADDED", "obj"), ("MODIFIED", "obj"), ("DELETED", "obj")]


async def test_without_a_memo_given_each_object_still_gets_one_of_its_own(
    harness: Harness,
) -> None:
    from trikopf.processing import ObjectState, process_event

    memos: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(name: str, memo: trikopf.Memo, **_: Any) -> None:
        memos.append((name, memo))

    states = {"a": ObjectState(), "b": ObjectState()}
    for name in ("a", "b"):
        body = await harness.create(name)
        await process_event(
            registry=harness.registry,
            settings=harness.settings,
            resource=harness.resource,
            event=WatchEvent(type="ADDED", object=body),
            client=harness.client,
            memo=None,
            poster=None,
            state=states[name],
        )
    assert len(memos) == 2
    assert all(isinstance(memo, trikopf.Memo) for _, memo in memos)
    assert memos[0][1] is not memos[1][1]  # one per object
    assert states["a"].memo is memos[0][1]  # kept for the object's later rounds


async def test_event_handlers_patches_are_sent(harness: Harness) -> None:
    @trikopf.on.event("kopfexamples", registry=harness.registry)
    def on_event(patch: trikopf.Patch, **_: Any) -> None:
        patch.metadata.annotations["seen-by"] = "event-handler"

    body = await harness.create()
    await handle_raw_event(
        registry=harness.registry,
        settings=harness.settings,
        resource=harness.resource,
        event=WatchEvent(type="ADDED", object=body),
        client=harness.client,
        memo=harness.memo,
        poster=harness.poster,
    )
    stored = await harness.get()
    assert stored["metadata"]["annotations"]["seen-by"] == "event-handler"


async def test_a_sync_handler_past_its_timeout_is_abandoned_not_awaited(harness: Harness) -> None:
    release = threading.Event()

    @trikopf.on.create("kopfexamples", registry=harness.registry, timeout=0.2)
    def stuck(**_: Any) -> str:
        release.wait(10)  # a thread cannot be interrupted; the round must not wait for it
        return "late"

    await harness.create()
    try:
        outcome = await harness.round()
    finally:
        release.set()
    assert outcome.delay is None
    stored = await harness.get()
    assert "stuck" not in stored.get("status", {})
    events = await harness.events()
    assert ("Warning", "Error", "Handler 'stuck' has timed out after 0.2s.") in events
