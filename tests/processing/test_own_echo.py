"""The watch event that brings back our own PATCH (its echo) is cheap, and only that one."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import trikopf
from trikopf.processing import ObjectState, ProcessingOutcome, process_event, settle_own_echo
from trikopf.structs import WatchEvent

if TYPE_CHECKING:
    from tests.processing.conftest import Harness

ESSENCE = "trikopf.dev/last-handled-configuration"


def _requests(harness: Harness) -> int:
    return len(harness.server.requests)


async def _deliver(harness: Harness, body: dict[str, Any], *, listed: bool) -> ProcessingOutcome:
    """One round for ``body`` as the watch (or a relist, ``listed``) delivers it."""
    return await process_event(
        registry=harness.registry,
        settings=harness.settings,
        resource=harness.resource,
        event=WatchEvent(type="MODIFIED", object=body, listed=listed),
        client=harness.client,
        memo=harness.memo,
        poster=harness.poster,
        state=harness.states.setdefault("obj", ObjectState()),
    )


def _counting_create(harness: Harness) -> list[Any]:
    calls: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(spec: Any, **_: Any) -> Any:
        calls.append(dict(spec))
        return {"done": True}

    return calls


async def _echo_costs_nothing(harness: Harness, *, patches_per_round: int) -> None:
    calls = _counting_create(harness)
    await harness.create(spec={"size": 1})
    assert await harness.round() == ProcessingOutcome()
    assert calls == [{"size": 1}]
    sent_patches = harness.patches()
    assert sent_patches == patches_per_round

    before = _requests(harness)
    echo = await harness.get()  # the body our PATCH produced, as the watch brings it back
    after_get = _requests(harness)
    assert after_get == before + 1
    assert await harness.round(body=echo) == ProcessingOutcome()
    assert calls == [{"size": 1}]
    assert _requests(harness) == after_get
    assert echo["status"]["create_fn"] == {"done": True}
    assert harness.patches() == sent_patches


async def test_the_echo_of_our_own_patch_costs_no_handler_call_and_no_request(
    harness: Harness,
) -> None:
    await _echo_costs_nothing(harness, patches_per_round=1)


async def test_the_echo_costs_nothing_when_status_is_patched_on_its_own(
    status_harness: Harness,
) -> None:
    # Two PATCHes per round (status, then the rest): the first one's echo is older than the
    # second's and is skipped as before; the second's is our echo.
    await _echo_costs_nothing(status_harness, patches_per_round=2)


async def test_the_echo_is_not_examined_again(harness: Harness) -> None:
    # A body with our PATCH's resourceVersion is the body our PATCH returned: whatever it
    # says is not looked at again. (No real server sends another body with that version; the
    # altered copy below shows that no cause is detected on it.)
    calls = _counting_create(harness)
    await harness.create(spec={"size": 1})
    await harness.round()
    echo = await harness.get()
    altered = copy.deepcopy(echo)
    del altered["metadata"]["annotations"][ESSENCE]
    assert await harness.round(body=altered) == ProcessingOutcome()
    assert calls == [{"size": 1}]


async def test_a_relisted_body_with_our_version_is_examined_in_full(harness: Harness) -> None:
    calls = _counting_create(harness)
    await harness.create(spec={"size": 1})
    await harness.round()
    altered = copy.deepcopy(await harness.get())
    del altered["metadata"]["annotations"][ESSENCE]
    await _deliver(harness, altered, listed=True)
    assert calls == [{"size": 1}, {"size": 1}]


async def test_only_the_first_delivery_of_the_echo_is_skipped(harness: Harness) -> None:
    calls = _counting_create(harness)
    await harness.create(spec={"size": 1})
    await harness.round()
    altered = copy.deepcopy(await harness.get())
    del altered["metadata"]["annotations"][ESSENCE]
    await harness.round(body=altered)  # the echo
    await harness.round(body=altered)  # the same version again: examined, a creation again
    assert calls == [{"size": 1}, {"size": 1}]


async def test_a_foreign_change_made_while_the_handler_runs_is_handled(harness: Harness) -> None:
    updates: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(**_: Any) -> Any:
        # Another writer changes the spec between the event and our PATCH: the PATCH
        # response (our echo's body) carries a change that this round did not handle.
        await harness.patch({"spec": {"size": 2}})
        return {"done": True}

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(old: Any, new: Any, **_: Any) -> None:
        updates.append((old["spec"], new["spec"]))

    await harness.create(spec={"size": 1})
    await harness.round()
    echo = await harness.get()
    assert echo["spec"] == {"size": 2}
    await harness.round(body=echo)
    assert updates == [({"size": 1}, {"size": 2})]


async def test_a_foreign_change_after_our_patch_is_handled(harness: Harness) -> None:
    updates: list[Any] = []
    _counting_create(harness)

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(old: Any, new: Any, **_: Any) -> None:
        updates.append((old["spec"], new["spec"]))

    await harness.create(spec={"size": 1})
    await harness.round()
    echo = await harness.get()
    await harness.patch({"spec": {"size": 3}})
    await harness.round(body=echo)  # our echo first, as the watch orders them
    await harness.round()  # then the foreign change
    assert updates == [({"size": 1}, {"size": 3})]


async def test_a_foreign_label_change_before_our_patch_is_handled(harness: Harness) -> None:
    updates: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(**_: Any) -> Any:
        await harness.patch({"metadata": {"labels": {"tier": "gold"}}})
        return {"done": True}

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(new: Any, **_: Any) -> None:
        updates.append(new["metadata"].get("labels"))

    await harness.create(spec={"size": 1})
    await harness.round()
    await harness.round()  # the echo, which carries the foreign label
    assert updates == [{"tier": "gold"}]


async def test_a_retried_round_examines_the_echo_of_its_progress(harness: Harness) -> None:
    calls: list[int] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(retry: int, **_: Any) -> None:
        calls.append(retry)
        if retry == 0:
            raise trikopf.TemporaryError("not yet", delay=0)

    await harness.create(spec={"size": 1})
    outcome = await harness.round()
    assert outcome.delay == 0
    await harness.round()  # the echo of the progress patch: the retry is due, so it runs
    assert calls == [0, 1]
    requests = _requests(harness)
    await harness.round(body=await harness.get())  # the echo of the finished round
    assert _requests(harness) == requests + 1  # only our own GET above
    assert calls == [0, 1]


async def test_the_echo_settles_on_arrival_once_and_only_as_a_watch_event(
    harness: Harness,
) -> None:
    # What the reactor asks when the echo arrives, before it would wake the object's worker.
    calls = _counting_create(harness)
    await harness.create(spec={"size": 1})
    await harness.round()
    echo = await harness.get()
    state = harness.states["obj"]
    assert not settle_own_echo(WatchEvent(type="MODIFIED", object=echo, listed=True), state)
    assert settle_own_echo(WatchEvent(type="MODIFIED", object=echo), state)
    assert (state.awaiting, state.echo) == (None, None)
    assert not settle_own_echo(WatchEvent(type="MODIFIED", object=echo), state)
    # Settled, the same body is examined in full again and finds nothing to do.
    assert await harness.round(body=echo) == ProcessingOutcome()
    assert calls == [{"size": 1}]


async def test_a_foreign_change_after_our_patch_does_not_settle(harness: Harness) -> None:
    calls = _counting_create(harness)
    await harness.create(spec={"size": 1})
    await harness.round()
    changed = await harness.patch({"spec": {"size": 2}})  # another writer, after our PATCH
    state = harness.states["obj"]
    assert not settle_own_echo(WatchEvent(type="MODIFIED", object=changed), state)
    assert state.echo is not None
    await harness.round(body=changed)
    assert calls == [{"size": 1}]  # an update, not a creation: no create handler runs again
