from __future__ import annotations

import pytest

from trikopf.diffs import Diff, DiffItem, DiffOperation, diff, parse_field, reduce, resolve


def test_diff_of_equal_values_is_empty() -> None:
    assert not diff({"a": {"b": 1}}, {"a": {"b": 1}})
    assert len(diff(None, None)) == 0


def test_diff_reports_add_change_and_remove_with_field_paths() -> None:
    d = diff({"spec": {"a": 1, "b": 2}}, {"spec": {"a": 10, "c": 3}})
    assert list(d) == [
        DiffItem(DiffOperation.CHANGE, ("spec", "a"), 1, 10),
        DiffItem(DiffOperation.REMOVE, ("spec", "b"), 2, None),
        DiffItem(DiffOperation.ADD, ("spec", "c"), None, 3),
    ]


def test_diff_items_unpack_like_kopf_tuples() -> None:
    ((op, field, old, new),) = diff({"x": [1]}, {"x": [1, 2]})
    assert (op, field, old, new) == ("change", ("x",), [1], [1, 2])


def test_diff_compares_with_lists_and_tuples() -> None:
    d = diff(None, {"a": 1})
    assert d == [("add", (), None, {"a": 1})]
    assert d != Diff()


def test_reduce_narrows_the_diff_to_one_field() -> None:
    d = diff({"spec": {"a": {"x": 1}, "b": 2}}, {"spec": {"a": {"x": 2}, "b": 3}})
    assert list(reduce(d, ("spec", "a"))) == [DiffItem(DiffOperation.CHANGE, ("x",), 1, 2)]


def test_reduce_narrows_a_replaced_parent_down_to_the_field() -> None:
    d = diff(None, {"spec": {"a": 5, "b": 1}})
    assert list(reduce(d, ("spec", "a"))) == [DiffItem(DiffOperation.ADD, (), None, 5)]
    assert not reduce(d, ("spec", "zzz"))


def test_parse_field_accepts_dots_and_sequences_and_rejects_empty_keys() -> None:
    assert parse_field("spec.a.b") == ("spec", "a", "b")
    assert parse_field(["spec", "a"]) == ("spec", "a")
    with pytest.raises(ValueError, match="non-empty"):
        parse_field("spec..a")


def test_resolve_returns_default_for_missing_keys() -> None:
    assert resolve({"a": {"b": 1}}, ("a", "b")) == 1
    assert resolve({"a": {"b": 1}}, ("a", "c"), default="x") == "x"
    assert resolve({"a": 1}, ("a", "b")) is None
