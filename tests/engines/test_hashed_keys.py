"""HashedKeys: a set of strings as their hashes in one array (the supervisor's idle objects)."""

from __future__ import annotations

import tracemalloc

from trikopf._util.memory import HashedKeys


def test_keys_added_are_found_and_discarded_ones_are_not() -> None:
    keys = HashedKeys(["a", "b"])
    keys.add("c")
    keys.add("a")  # again: no change
    assert len(keys) == 3
    assert "a" in keys
    assert "b" in keys
    assert "c" in keys
    assert "d" not in keys
    assert 1 not in keys
    assert keys.discard("b") is True
    assert keys.discard("b") is False
    assert "b" not in keys
    assert "c" in keys
    assert len(keys) == 2


def test_many_keys_grow_and_shrink_the_table_and_stay_exact() -> None:
    uids = [f"uid-{n:08d}" for n in range(20_000)]
    keys = HashedKeys()
    for uid in uids:
        keys.add(uid)
    assert len(keys) == len(uids)
    assert all(uid in keys for uid in uids)
    assert not any(f"other-{n}" in keys for n in range(1_000))
    for uid in uids[:19_990]:
        assert keys.discard(uid)
    assert len(keys) == 10
    assert all(uid in keys for uid in uids[19_990:])
    assert not any(uid in keys for uid in uids[:19_990])
    keys.add(uids[0])  # discarded places are reused or dropped, never confused with keys
    assert uids[0] in keys
    assert len(keys) == 11


def test_a_key_costs_a_few_bytes_and_no_object_of_its_own() -> None:
    uids = [f"0b7c2a4e-5d1f-4c1e-9a77-{n:012d}" for n in range(10_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        keys = HashedKeys(uids)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(keys) == len(uids)
    assert (after - before) / len(uids) < 32  # 8 bytes a place, a third to two thirds used
