"""Merge, JSON and strategic merge patches as the real API server applies them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from trikopf.apiserver.patching import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_patch,
    apply_strategic_merge_patch,
)

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "labels": {"app": "web", "tier": "front"},
        "finalizers": ["a.example.com/x"],
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "o1", "uid": "u1"},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "o2", "uid": "u2"},
        ],
    },
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:1",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80, "name": "http"}],
                    },
                    {"name": "sidecar", "image": "side:1"},
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [{"key": "k", "operator": "Exists"}],
            }
        },
    },
}


def smp(patch: Any, target: dict[str, Any] | None = None) -> dict[str, Any]:
    return apply_strategic_merge_patch(
        target if target is not None else DEPLOYMENT, patch, group="apps", kind="Deployment"
    )


# --- merge patch ---


def test_merge_patch_merges_objects_deletes_nulls_and_replaces_lists() -> None:
    original = copy.deepcopy(DEPLOYMENT)
    result = apply_merge_patch(
        DEPLOYMENT,
        {"metadata": {"labels": {"tier": None, "new": "x"}}, "spec": {"replicas": 3}},
    )
    assert result["metadata"]["labels"] == {"app": "web", "new": "x"}
    assert result["spec"]["replicas"] == 3
    assert result["spec"]["template"] == DEPLOYMENT["spec"]["template"]
    replaced = apply_merge_patch(DEPLOYMENT, {"metadata": {"finalizers": ["b"]}})
    assert replaced["metadata"]["finalizers"] == ["b"]
    assert original == DEPLOYMENT  # inputs are never mutated


def test_merge_patch_result_shares_no_state_with_the_input() -> None:
    target = {"a": {"b": [1, 2]}}
    result = apply_merge_patch(target, {"c": 1})
    result["a"]["b"].append(3)
    assert target == {"a": {"b": [1, 2]}}


def test_merge_patch_must_be_an_object() -> None:
    with pytest.raises(PatchError) as excinfo:
        apply_merge_patch({}, [1])
    assert excinfo.value.code == 400


def test_merge_patch_replaces_a_scalar_with_an_object() -> None:
    assert apply_merge_patch({"a": 1}, {"a": {"b": None, "c": 2}}) == {"a": {"c": 2}}


# --- JSON patch ---


def test_json_patch_applies_every_operation_in_order() -> None:
    doc = {"a": {"b": 1, "c/d": 2, "e~f": 3}, "list": [1, 2, 3]}
    result = apply_json_patch(
        doc,
        [
            {"op": "test", "path": "/a/b", "value": 1},
            {"op": "add", "path": "/a/new", "value": {"x": 1}},
            {"op": "replace", "path": "/a/c~1d", "value": 20},
            {"op": "remove", "path": "/a/e~0f"},
            {"op": "add", "path": "/list/-", "value": 4},
            {"op": "add", "path": "/list/0", "value": 0},
            {"op": "remove", "path": "/list/1"},
            {"op": "copy", "from": "/a/new", "path": "/copied"},
            {"op": "move", "from": "/a/b", "path": "/moved"},
        ],
    )
    assert result == {
        "a": {"c/d": 20, "new": {"x": 1}},
        "list": [0, 2, 3, 4],
        "copied": {"x": 1},
        "moved": 1,
    }
    assert doc == {"a": {"b": 1, "c/d": 2, "e~f": 3}, "list": [1, 2, 3]}


def test_json_patch_failed_test_rejects_the_whole_patch() -> None:
    doc = {"spec": {"replicas": 1}}
    with pytest.raises(PatchError) as excinfo:
        apply_json_patch(
            doc,
            [
                {"op": "replace", "path": "/spec/replicas", "value": 5},
                {"op": "test", "path": "/spec/replicas", "value": 1},
            ],
        )
    assert excinfo.value.code == 422
    assert doc == {"spec": {"replicas": 1}}


def test_json_patch_test_distinguishes_booleans_from_numbers() -> None:
    with pytest.raises(PatchError):
        apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": True}])
    assert apply_json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}]) == {"a": 1}


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ({"op": "add"}, 400),
        ([{"op": "frobnicate", "path": "/a"}], 400),
        ([{"op": "add", "path": "a", "value": 1}], 400),
        ([{"op": "add", "path": "/a"}], 400),
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "add", "path": "/missing/child", "value": 1}], 422),
        ([{"op": "add", "path": "/list/5", "value": 1}], 422),
        ([{"op": "add", "path": "/list/01", "value": 1}], 422),
        ([{"op": "move", "from": "/obj", "path": "/obj/inner"}], 422),
        ([{"op": "remove", "path": ""}], 422),
    ],
)
def test_json_patch_errors_carry_the_real_server_codes(ops: Any, code: int) -> None:
    with pytest.raises(PatchError) as excinfo:
        apply_json_patch({"list": [1], "obj": {}}, ops)
    assert excinfo.value.code == code


# --- strategic merge patch ---


def test_strategic_merge_patch_merges_containers_and_env_by_name() -> None:
    result = smp(
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}]},
                            {"name": "new", "image": "new:1"},
                        ]
                    }
                }
            }
        }
    )
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "sidecar", "new"]
    assert containers[0]["image"] == "app:2"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
    assert containers[0]["ports"] == [{"containerPort": 80, "name": "http"}]


def test_strategic_merge_patch_replaces_lists_without_a_merge_key() -> None:
    result = smp({"spec": {"template": {"spec": {"tolerations": [{"key": "other"}]}}}})
    assert result["spec"]["template"]["spec"]["tolerations"] == [{"key": "other"}]


def test_strategic_merge_patch_deletes_list_elements_by_key() -> None:
    result = smp(
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    )
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["app"]


def test_strategic_merge_patch_replace_directive_in_a_list_replaces_it() -> None:
    result = smp(
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o"}]}
                }
            }
        }
    )
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "o"}]


def test_strategic_merge_patch_replace_and_delete_directives_on_maps() -> None:
    replaced = smp({"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert replaced["metadata"]["labels"] == {"only": "this"}
    deleted = smp({"metadata": {"labels": {"$patch": "delete"}}})
    assert "labels" not in deleted["metadata"]


def test_strategic_merge_patch_treats_finalizers_as_a_set() -> None:
    result = smp({"metadata": {"finalizers": ["a.example.com/x", "b.example.com/y"]}})
    assert result["metadata"]["finalizers"] == ["a.example.com/x", "b.example.com/y"]
    removed = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x"]}})
    assert removed["metadata"]["finalizers"] == []


def test_strategic_merge_patch_merges_owner_references_by_uid() -> None:
    result = smp(
        {
            "metadata": {
                "ownerReferences": [
                    {"uid": "u2", "name": "renamed", "apiVersion": "v1", "kind": "ConfigMap"},
                    {"uid": "u3", "name": "o3", "apiVersion": "v1", "kind": "ConfigMap"},
                    {"uid": "u1", "$patch": "delete"},
                ]
            }
        }
    )
    refs = result["metadata"]["ownerReferences"]
    assert [(r["uid"], r["name"]) for r in refs] == [("u2", "renamed"), ("u3", "o3")]


def test_strategic_merge_patch_set_element_order_reorders_the_list() -> None:
    result = smp(
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                        "containers": [{"name": "sidecar", "image": "side:2"}],
                    }
                }
            }
        }
    )
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("sidecar", "side:2"),
        ("app", "app:1"),
    ]


def test_strategic_merge_patch_retain_keys_clears_the_other_fields() -> None:
    target = {
        "metadata": {"name": "d"},
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
    }
    result = smp({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, target)
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(PatchError) as excinfo:
        smp({"spec": {"strategy": {"$retainKeys": ["type"], "other": 1}}}, target)
    assert excinfo.value.code == 422


def test_strategic_merge_patch_what_kubectl_label_sends() -> None:
    result = smp({"metadata": {"labels": {"tier": None, "env": "prod"}}})
    assert result["metadata"]["labels"] == {"app": "web", "env": "prod"}


def test_strategic_merge_patch_is_refused_for_custom_resources_with_415() -> None:
    with pytest.raises(PatchError) as excinfo:
        apply_strategic_merge_patch({}, {}, group="kopf.dev", kind="KopfExample")
    assert excinfo.value.code == 415
    assert "application/merge-patch+json" in excinfo.value.message


@pytest.mark.parametrize(
    "patch",
    [
        [1],
        {"metadata": {"labels": {"$patch": "explode"}}},
        {"$unknownDirective": 1},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "x"}},
    ],
)
def test_malformed_strategic_merge_patches_are_bad_requests(patch: Any) -> None:
    with pytest.raises(PatchError) as excinfo:
        smp(patch)
    assert excinfo.value.code == 400


def test_strategic_merge_patch_elements_without_the_merge_key_are_invalid() -> None:
    with pytest.raises(PatchError) as excinfo:
        smp({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert excinfo.value.code == 422


def test_strategic_merge_patch_never_mutates_its_inputs() -> None:
    original = copy.deepcopy(DEPLOYMENT)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}}
    patch_copy = copy.deepcopy(patch)
    result = smp(patch)
    result["spec"]["template"]["spec"]["containers"][0]["env"].clear()
    assert original == DEPLOYMENT
    assert patch == patch_copy


def test_apply_patch_dispatches_on_the_content_type() -> None:
    target = {"metadata": {"finalizers": ["a"]}}
    merged = apply_patch(
        "application/merge-patch+json; charset=utf-8",
        target,
        {"metadata": {"finalizers": ["b"]}},
        group="",
        kind="ConfigMap",
    )
    assert merged["metadata"]["finalizers"] == ["b"]
    strategic = apply_patch(
        "application/strategic-merge-patch+json",
        target,
        {"metadata": {"finalizers": ["b"]}},
        group="",
        kind="ConfigMap",
    )
    assert strategic["metadata"]["finalizers"] == ["a", "b"]
    jsonpatched = apply_patch(
        "application/json-patch+json",
        target,
        [{"op": "add", "path": "/metadata/finalizers/-", "value": "c"}],
        group="",
        kind="ConfigMap",
    )
    assert jsonpatched["metadata"]["finalizers"] == ["a", "c"]
    with pytest.raises(PatchError) as excinfo:
        apply_patch("text/plain", target, {}, group="", kind="ConfigMap")
    assert excinfo.value.code == 415
