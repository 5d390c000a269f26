"""kubectl label, annotate, patch and edit against the embedded API server."""

from __future__ import annotations

import pathlib
import stat
from typing import Any

import pytest

from tests.apiserver.kubectl_support import MANIFESTS, Kubectl
from trikopf.apiserver import ApiServer

pytestmark = pytest.mark.kubectl


@pytest.fixture
def anyio_backend() -> str:
    # kubectl sees the same HTTP on either backend; test_kubectl_apply.py covers both, the
    # rest of the kubectl suite runs on Trio (the default) to keep the suite quick.
    return "trio"


NAME = "kopf-example-1"


def stored(
    apiserver: ApiServer, resource: str = "kopfexamples", name: str = NAME
) -> dict[str, Any]:
    found = apiserver.get_object(resource, name, "default")
    assert found is not None
    return found


async def test_label_adds_overwrites_and_removes_labels(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    result = await kubectl.run("label", "kex", NAME, "tier=front", "env=dev")
    assert result.stdout == f"kopfexample.kopf.dev/{NAME} labeled\n"
    assert stored(apiserver)["metadata"]["labels"] == {
        "somelabel": "somevalue",
        "tier": "front",
        "env": "dev",
    }
    refused = await kubectl.run("label", "kex", NAME, "tier=back", expect_failure=True)
    assert "already has a value (front)" in refused.stderr
    await kubectl.run("label", "kex", NAME, "tier=back", "--overwrite")
    await kubectl.run("label", "kex", NAME, "env-")
    assert stored(apiserver)["metadata"]["labels"] == {"somelabel": "somevalue", "tier": "back"}
    invalid = await kubectl.run("label", "kex", NAME, "bad key=x", expect_failure=True)
    assert invalid.stderr
    assert stored(apiserver)["metadata"]["labels"] == {"somelabel": "somevalue", "tier": "back"}


async def test_label_of_a_builtin_kind_by_selector(kubectl: Kubectl, apiserver: ApiServer) -> None:
    await kubectl.run("apply", "-f", str(MANIFESTS / "configmap.yaml"))
    result = await kubectl.run("label", "cm", "-l", "app=web", "reviewed=yes")
    assert result.stdout == "configmap/settings labeled\n"
    assert stored(apiserver, "configmaps", "settings")["metadata"]["labels"] == {
        "app": "web",
        "reviewed": "yes",
    }


async def test_annotate_adds_and_removes_annotations(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    await kubectl.run("annotate", "kex", NAME, "note=first")
    await kubectl.run("annotate", "kex", NAME, "note=second", "--overwrite")
    annotations = stored(apiserver)["metadata"]["annotations"]
    assert annotations["note"] == "second"
    assert annotations["someannotation"] == "somevalue"
    await kubectl.run("annotate", "kex", NAME, "note-")
    assert "note" not in stored(apiserver)["metadata"]["annotations"]


async def test_patch_as_merge_and_json_patch(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    generation = stored(apiserver)["metadata"]["generation"]
    merged = await kubectl.run(
        "patch", "kex", NAME, "--type=merge", "-p", '{"spec": {"field": "merged", "items": null}}'
    )
    assert merged.stdout == f"kopfexample.kopf.dev/{NAME} patched\n"
    assert stored(apiserver)["spec"] == {"duration": "1m", "field": "merged"}
    assert stored(apiserver)["metadata"]["generation"] == generation + 1
    ops = (
        '[{"op": "test", "path": "/spec/field", "value": "merged"},'
        ' {"op": "add", "path": "/spec/items", "value": ["x"]},'
        ' {"op": "move", "from": "/spec/field", "path": "/spec/moved"}]'
    )
    await kubectl.run("patch", "kex", NAME, "--type=json", "-p", ops)
    assert stored(apiserver)["spec"] == {"duration": "1m", "items": ["x"], "moved": "merged"}
    failing = '[{"op": "test", "path": "/spec/duration", "value": "2h"}]'
    result = await kubectl.run(
        "patch", "kex", NAME, "--type=json", "-p", failing, expect_failure=True
    )
    assert result.stderr.startswith("The request is invalid: ")
    assert stored(apiserver)["spec"] == {"duration": "1m", "items": ["x"], "moved": "merged"}


async def test_strategic_patch_merges_builtin_lists_and_is_refused_for_custom_resources(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    patch = (
        '{"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}}'
    )
    result = await kubectl.run("patch", "deployment", "web", "-p", patch)
    assert result.stdout == "deployment.apps/web patched\n"
    containers = stored(apiserver, "deployments", "web")["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        ("app", "nginx:2"),
        ("sidecar", "busybox:1.36"),
    ]
    assert containers[0]["env"] == [{"name": "MODE", "value": "production"}]
    refused = await kubectl.run(
        "patch", "kex", NAME, "-p", '{"spec": {"field": "x"}}', expect_failure=True
    )
    assert "application/strategic-merge-patch+json is not supported" in refused.stderr
    assert stored(apiserver)["spec"]["field"] == "value"


async def test_patch_of_the_status_subresource_changes_only_status(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    before = stored(apiserver)
    patch = '{"status": {"create_fn": {"message": "hello", "children": "2"}}, "spec": {"field": "ignored"}}'
    result = await kubectl.run(
        "patch", "kex", NAME, "--subresource=status", "--type=merge", "-p", patch
    )
    assert result.stdout == f"kopfexample.kopf.dev/{NAME} patched\n"
    after = stored(apiserver)
    assert after["status"] == {"create_fn": {"message": "hello", "children": "2"}}
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    # Through the main resource, status does not change once the subresource is enabled.
    await kubectl.run("patch", "kex", NAME, "--type=merge", "-p", '{"status": {"create_fn": null}}')
    assert stored(apiserver)["status"] == {"create_fn": {"message": "hello", "children": "2"}}
    table = await kubectl.run("get", "kex", NAME, "--no-headers")
    assert table.stdout.split()[:4] == [NAME, "1m", "2", "hello"]


async def test_edit_applies_the_editors_changes(
    kubectl: Kubectl, apiserver: ApiServer, example: None, tmp_path: pathlib.Path
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i -e "s/field: value/field: edited/" "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    result = await kubectl.run("edit", "kex", NAME, env={"KUBE_EDITOR": str(editor)})
    assert result.stdout == f"kopfexample.kopf.dev/{NAME} edited\n"
    assert stored(apiserver)["spec"]["field"] == "edited"
    await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    image_editor = tmp_path / "image-editor.sh"
    image_editor.write_text('#!/bin/sh\nsed -i -e "s/busybox:1.36/busybox:1.37/" "$1"\n')
    image_editor.chmod(image_editor.stat().st_mode | stat.S_IXUSR)
    await kubectl.run("edit", "deployment", "web", env={"KUBE_EDITOR": str(image_editor)})
    containers = stored(apiserver, "deployments", "web")["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["nginx:1.27", "busybox:1.37"]


async def test_edit_without_changes_patches_nothing(
    kubectl: Kubectl, apiserver: ApiServer, example: None, tmp_path: pathlib.Path
) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\ntrue\n")
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    before = stored(apiserver)
    result = await kubectl.run(
        "edit",
        "kex",
        NAME,
        env={"KUBE_EDITOR": str(editor)},
        expect_stderr="Edit cancelled, no changes made.\n",
    )
    assert result.stdout == ""
    assert stored(apiserver) == before
