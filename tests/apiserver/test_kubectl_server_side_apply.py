"""kubectl apply --server-side against the embedded API server: ownership and conflicts."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.apiserver.kubectl_support import Kubectl
from trikopf.apiserver import ApiServer

pytestmark = pytest.mark.kubectl


def write_configmap(tmp_path: pathlib.Path, name: str, **data: str) -> str:
    manifest = tmp_path / name
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": data}
    manifest.write_text(yaml.safe_dump(body))
    return str(manifest)


async def test_server_side_apply_conflicts_between_managers_and_force_wins(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    first = write_configmap(tmp_path, "first.yaml", a="1", b="2")
    second = write_configmap(tmp_path, "second.yaml", a="9")
    created = await kubectl.run("apply", "--server-side", "--field-manager=first", "-f", first)
    assert created.stdout == "configmap/cm serverside-applied\n"
    refused = await kubectl.run(
        "apply", "--server-side", "--field-manager=second", "-f", second, expect_failure=True
    )
    assert refused.code == 1
    assert 'Apply failed with 1 conflict: conflict with "first": .data.a' in refused.stderr
    assert "--force-conflicts" in refused.stderr
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "1", "b": "2"}
    forced = await kubectl.run(
        "apply", "--server-side", "--field-manager=second", "--force-conflicts", "-f", second
    )
    assert forced.stdout == "configmap/cm serverside-applied\n"
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "9", "b": "2"}


async def test_get_shows_managed_fields_only_when_asked(
    kubectl: Kubectl, tmp_path: pathlib.Path
) -> None:
    manifest = write_configmap(tmp_path, "cm.yaml", a="1")
    await kubectl.run("apply", "--server-side", "-f", manifest)
    await kubectl.run("label", "configmap", "cm", "team=a")
    hidden = (await kubectl.run("get", "configmap", "cm", "-o", "yaml")).yaml()
    assert "managedFields" not in hidden["metadata"]
    shown = await kubectl.run("get", "configmap", "cm", "-o", "yaml", "--show-managed-fields")
    managed = shown.yaml()["metadata"]["managedFields"]
    by_manager = {(e["manager"], e["operation"]): e for e in managed}
    assert set(by_manager) == {("kubectl", "Apply"), ("kubectl-label", "Update")}
    assert by_manager[("kubectl", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert by_manager[("kubectl-label", "Update")]["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:team": {}}}
    }
    assert [e["operation"] for e in managed] == ["Apply", "Update"]


async def test_server_side_apply_removes_a_field_the_manifest_dropped(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    await kubectl.run(
        "apply", "--server-side", "-f", write_configmap(tmp_path, "one.yaml", a="1", b="2")
    )
    result = await kubectl.run(
        "apply", "--server-side", "-f", write_configmap(tmp_path, "two.yaml", a="1")
    )
    assert result.stdout == "configmap/cm serverside-applied\n"
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "1"}


async def test_client_side_apply_and_create_record_kubectls_field_managers(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    await kubectl.run("create", "configmap", "made", "--from-literal=x=1")
    await kubectl.run("apply", "-f", write_configmap(tmp_path, "cm.yaml", a="1"))
    made = apiserver.get_object("configmaps", "made", "default")
    applied = apiserver.get_object("configmaps", "cm", "default")
    assert made is not None
    assert applied is not None
    assert [e["manager"] for e in made["metadata"]["managedFields"]] == ["kubectl-create"]
    assert [e["manager"] for e in applied["metadata"]["managedFields"]] == [
        "kubectl-client-side-apply"
    ]


async def test_moving_from_client_side_to_server_side_apply_hands_the_fields_over(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    manifest = write_configmap(tmp_path, "cm.yaml", a="1", b="2")
    await kubectl.run("apply", "-f", manifest)
    # Same values: no conflict; kubectl then rewrites managedFields (a JSON patch) so that
    # its server-side manager takes over what client-side apply owned.
    result = await kubectl.run("apply", "--server-side", "-f", manifest)
    assert result.stdout == "configmap/cm serverside-applied\n"
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    managers = {(e["manager"], e["operation"]) for e in stored["metadata"]["managedFields"]}
    assert ("kubectl-client-side-apply", "Update") not in managers
    assert ("kubectl", "Apply") in managers
    # Dropping a field now removes it, as the server-side manager owns it.
    await kubectl.run("apply", "--server-side", "-f", write_configmap(tmp_path, "a.yaml", a="1"))
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "1"}


async def test_kubectl_takes_over_its_client_side_fields_without_forcing(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    await kubectl.run("apply", "-f", write_configmap(tmp_path, "one.yaml", a="1", b="2"))
    # A changed value that client-side apply set: kubectl's own server-side manager may
    # take it (it is in last-applied-configuration); another manager may not.
    changed = write_configmap(tmp_path, "two.yaml", a="5", b="2")
    refused = await kubectl.run(
        "apply", "--server-side", "--field-manager=other", "-f", changed, expect_failure=True
    )
    assert 'conflict with "kubectl-client-side-apply" using v1: .data.a' in refused.stderr
    await kubectl.run("apply", "--server-side", "-f", changed)
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "5", "b": "2"}
    last = stored["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert '"a":"5"' in last
