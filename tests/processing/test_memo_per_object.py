"""The per-object memo is copy-on-write: kept between rounds only once a handler changed it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trikopf
from trikopf.processing import ObjectState, release_untouched_memo

if TYPE_CHECKING:
    from tests.processing.conftest import Harness


async def test_an_object_whose_handlers_only_read_the_memo_keeps_no_memo_copy(
    harness: Harness,
) -> None:
    harness.memo.shared = ["from startup"]
    read: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(memo: trikopf.Memo, **_: Any) -> None:
        # Async: a sync handler's worker thread may hold its arguments a while (then the copy
        # is kept, which is the safe side).
        read.append(list(memo.shared))

    await harness.create()
    await harness.settle()
    assert read == [["from startup"]]
    assert harness.states["obj"].memo is None


async def test_a_memo_assignment_stays_with_its_object_across_rounds(harness: Harness) -> None:
    seen: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(memo: trikopf.Memo, **_: Any) -> None:
        memo.counter = 1

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(memo: trikopf.Memo, **_: Any) -> None:
        seen.append(memo.get("counter"))

    await harness.create()
    await harness.settle()
    assert harness.states["obj"].memo == {"counter": 1}
    assert "counter" not in harness.memo  # the operator's memo is not written
    await harness.patch({"spec": {"field": "changed"}})
    await harness.settle()
    assert seen == [1]


async def test_a_memo_deletion_of_a_shared_key_is_kept_for_its_object(harness: Harness) -> None:
    harness.memo.flag = True
    seen: list[Any] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(memo: trikopf.Memo, **_: Any) -> None:
        del memo.flag

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(memo: trikopf.Memo, **_: Any) -> None:
        seen.append("flag" in memo)

    await harness.create()
    await harness.settle()
    await harness.patch({"spec": {"field": "changed"}})
    await harness.settle()
    assert seen == [False]
    assert harness.memo.flag is True


def test_an_untouched_memo_copy_that_something_else_holds_is_kept() -> None:
    root = trikopf.Memo(key="value")
    state = ObjectState()
    state.memo = trikopf.Memo(root)
    holder = [state.memo]
    release_untouched_memo(state, root)
    assert state.memo is holder[0]
    holder.clear()
    release_untouched_memo(state, root)
    assert state.memo is None


def test_a_memo_copy_with_a_replaced_value_is_kept() -> None:
    root = trikopf.Memo(key="value")
    state = ObjectState()
    state.memo = trikopf.Memo(key="other")
    release_untouched_memo(state, root)
    assert state.memo == {"key": "other"}
