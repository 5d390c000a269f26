from __future__ import annotations

import tracemalloc

from trikopf.processing import ObjectState


def test_the_per_object_state_stays_far_below_a_kilobyte() -> None:
    count = 10_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        states = [ObjectState() for _ in range(count)]
        for i, state in enumerate(states):
            state.seen = True
            state.awaiting = 10_000_000 + i  # a large resourceVersion: an int object of its own
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_object = (after - before) / count
    assert per_object < 256  # ~100 bytes: three slots and an int
    assert len(states) == count


def test_the_state_has_no_dict_of_its_own() -> None:
    state = ObjectState()
    assert not hasattr(state, "__dict__")
    assert (state.seen, state.awaiting, state.failures) == (False, None, 0)
