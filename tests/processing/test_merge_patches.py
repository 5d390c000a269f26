"""Merging the round's patches: dicts merge key by key, any other mapping counts as one."""

from __future__ import annotations

import types

from trikopf.actions.patching import apply_merge_patch, merge_into
from trikopf.bodies import Patch


def test_nested_dicts_merge_key_by_key_and_leaves_are_replaced() -> None:
    target = {"status": {"a": 1, "b": {"c": 2}}, "spec": [1, 2]}
    merge_into(target, {"status": {"b": {"d": 3}, "e": None}, "spec": [3], "x": "y"})
    assert target == {"status": {"a": 1, "b": {"c": 2, "d": 3}, "e": None}, "spec": [3], "x": "y"}


def test_mappings_that_are_not_dicts_are_merged_as_plain_dicts() -> None:
    patch = Patch()
    patch.metadata.labels["run"] = "yes"  # a dict subclass section
    frozen = types.MappingProxyType({"phase": "Ready", "inner": types.MappingProxyType({"a": 1})})
    merged = merge_into({"metadata": "replaced"}, {**patch, "status": frozen})
    assert merged == {
        "metadata": {"labels": {"run": "yes"}},
        "status": {"phase": "Ready", "inner": {"a": 1}},
    }
    assert type(merged["status"]) is dict
    assert type(merged["status"]["inner"]) is dict


def test_a_merge_patch_with_none_removes_keys_and_builds_missing_sections() -> None:
    target = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": 1}
    proxy = types.MappingProxyType({"labels": {"a": None, "c": "3"}})
    apply_merge_patch(target, {"metadata": proxy, "spec": None, "status": {"x": True}})
    assert target == {"metadata": {"labels": {"b": "2", "c": "3"}}, "status": {"x": True}}
