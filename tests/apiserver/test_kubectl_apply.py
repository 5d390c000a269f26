"""kubectl apply, api-resources and explain against the embedded API server."""

from __future__ import annotations

import pathlib

import pytest

from tests.apiserver.kubectl_support import MANIFESTS, Kubectl
from trikopf.apiserver import ApiServer

pytestmark = pytest.mark.kubectl


async def test_apply_registers_a_crd_and_creates_its_object(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await kubectl.apply_crd()
    result = await kubectl.run("apply", "-f", str(MANIFESTS / "obj.yaml"))
    assert result.stdout == "kopfexample.kopf.dev/kopf-example-1 created\n"
    stored = apiserver.get_object("kopfexamples", "kopf-example-1", "default")
    assert stored is not None
    assert stored["spec"] == {"duration": "1m", "field": "value", "items": ["item1", "item2"]}
    assert stored["metadata"]["labels"] == {"somelabel": "somevalue"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]
    crd = apiserver.get_object("customresourcedefinitions", "kopfexamples.kopf.dev")
    assert crd is not None
    assert crd["spec"]["names"]["shortNames"] == ["kex", "kexs"]


async def test_applying_the_same_manifest_twice_changes_nothing(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await kubectl.apply_crd()
    await kubectl.run("apply", "-f", str(MANIFESTS / "obj.yaml"))
    before = apiserver.get_object("kopfexamples", "kopf-example-1", "default")
    again = await kubectl.run("apply", "-f", str(MANIFESTS / "obj.yaml"))
    assert again.stdout == "kopfexample.kopf.dev/kopf-example-1 unchanged\n"
    crd_again = await kubectl.run("apply", "-f", str(MANIFESTS / "crd.yaml"))
    assert (
        crd_again.stdout
        == "customresourcedefinition.apiextensions.k8s.io/kopfexamples.kopf.dev unchanged\n"
    )
    after = apiserver.get_object("kopfexamples", "kopf-example-1", "default")
    assert after == before


async def test_applying_a_changed_manifest_patches_only_the_difference(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    await kubectl.apply_crd()
    await kubectl.run("apply", "-f", str(MANIFESTS / "obj.yaml"))
    # Something else (an operator) writes a field the manifest does not mention.
    await kubectl.run("label", "kex", "kopf-example-1", "owner=operator")
    changed = (MANIFESTS / "obj.yaml").read_text().replace("duration: 1m", "duration: 5m")
    changed = changed.replace("    - item2\n", "")
    manifest = tmp_path / "obj.yaml"
    manifest.write_text(changed)
    result = await kubectl.run("apply", "-f", str(manifest))
    assert result.stdout == "kopfexample.kopf.dev/kopf-example-1 configured\n"
    stored = apiserver.get_object("kopfexamples", "kopf-example-1", "default")
    assert stored is not None
    assert stored["spec"] == {"duration": "5m", "field": "value", "items": ["item1"]}
    assert stored["metadata"]["labels"] == {"somelabel": "somevalue", "owner": "operator"}
    # Two patches reached the object: the label, then the apply's difference; no replace.
    writes = [
        r for r in apiserver.requests if r.method in ("PATCH", "PUT") and "kopfexamples/" in r.path
    ]
    assert [(r.method, r.status) for r in writes] == [("PATCH", 200), ("PATCH", 200)]


async def test_apply_of_a_builtin_kind_merges_containers_by_name(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    result = await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    assert result.stdout == "deployment.apps/web created\n"
    unchanged = await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    assert unchanged.stdout == "deployment.apps/web unchanged\n"
    changed = (MANIFESTS / "deployment.yaml").read_text().replace("nginx:1.27", "nginx:1.28")
    changed = changed.replace("        - name: sidecar\n          image: busybox:1.36\n", "")
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(changed)
    configured = await kubectl.run("apply", "-f", str(manifest))
    assert configured.stdout == "deployment.apps/web configured\n"
    stored = apiserver.get_object("deployments", "web", "default")
    assert stored is not None
    containers = stored["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("app", "nginx:1.28")]
    assert containers[0]["env"] == [{"name": "MODE", "value": "production"}]
    assert stored["metadata"]["generation"] == 2


async def test_apply_with_strict_validation_rejects_unknown_fields(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\ndta:\n  a: b\n")
    result = await kubectl.run("apply", "-f", str(manifest), expect_failure=True)
    assert 'unknown field "dta"' in result.stderr
    assert apiserver.get_object("configmaps", "typo", "default") is None
    # Warned about, the unknown field is dropped as a real server drops it.
    warned = await kubectl.run(
        "apply",
        "--validate=warn",
        "-f",
        str(manifest),
        expect_stderr='Warning: unknown field "dta"\n',
    )
    assert warned.stdout == "configmap/typo created\n"
    stored = apiserver.get_object("configmaps", "typo", "default")
    assert stored is not None
    assert "dta" not in stored
    # With validation off, it is dropped without a word.
    await kubectl.run("delete", "configmap", "typo")
    await kubectl.run("apply", "--validate=false", "-f", str(manifest))
    stored = apiserver.get_object("configmaps", "typo", "default")
    assert stored is not None
    assert "dta" not in stored


async def test_api_resources_lists_builtins_and_crds(kubectl: Kubectl) -> None:
    await kubectl.apply_crd()
    result = await kubectl.run("api-resources")
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert lines["kopfexamples"] == [
        "kopfexamples",
        "kex,kexs",
        "kopf.dev/v1",
        "true",
        "KopfExample",
    ]
    assert lines["configmaps"] == ["configmaps", "cm", "v1", "true", "ConfigMap"]
    assert lines["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert "deployments" in lines
    assert "leases" in lines
    assert "customresourcedefinitions" in lines
    wide = await kubectl.run("api-resources", "--api-group=kopf.dev", "-o", "wide")
    row = wide.stdout.splitlines()[1].split()
    assert row[:5] == ["kopfexamples", "kex,kexs", "kopf.dev/v1", "true", "KopfExample"]
    assert "all" in wide.stdout.splitlines()[1]
    assert "patch" in wide.stdout.splitlines()[1]


async def test_explain_describes_crd_and_builtin_fields(kubectl: Kubectl) -> None:
    await kubectl.apply_crd()
    result = await kubectl.run("explain", "kopfexamples")
    assert "KIND:" in result.stdout
    assert "KopfExample" in result.stdout
    assert "An example object for trikopf's example operators." in result.stdout
    assert "spec" in result.stdout
    spec = await kubectl.run("explain", "kex.spec.duration")
    assert "For how long the example should run (e.g. 1m)." in spec.stdout
    configmap = await kubectl.run("explain", "configmap.data")
    assert "UTF-8 configuration data." in configmap.stdout
    # The same from the protobuf OpenAPI v2 document, which kubectl decodes itself.
    from_v2 = await kubectl.run("explain", "kex.spec", "--output=plaintext-openapiv2")
    assert "RESOURCE: spec <Object>" in from_v2.stdout
    assert "A free-form value that handlers watch for changes." in from_v2.stdout
    references = await kubectl.run(
        "explain", "deployment.metadata.ownerReferences", "--output=plaintext-openapiv2"
    )
    assert "uid\t<string> -required-" in references.stdout


async def test_apply_sends_strategic_merge_directives_the_server_follows(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    # The second manifest reorders and removes list elements, changes a volume's source
    # ($retainKeys), switches the rollout strategy and adds a finalizer ($setElementOrder).
    await kubectl.run("apply", "-f", str(MANIFESTS / "deployment-volumes-1.yaml"))
    result = await kubectl.run("apply", "-f", str(MANIFESTS / "deployment-volumes-2.yaml"))
    assert result.stdout == "deployment.apps/vol configured\n"
    stored = apiserver.get_object("deployments", "vol", "default")
    assert stored is not None
    assert stored["metadata"]["finalizers"] == ["a.example.com/x", "b.example.com/y"]
    assert stored["spec"]["strategy"] == {"type": "Recreate"}
    pod = stored["spec"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "cfg", "configMap": {"name": "settings"}},
        {"name": "data", "secret": {"secretName": "s1"}},
    ]
    container = pod["containers"][0]
    assert container["env"] == [{"name": "C", "value": "3"}, {"name": "A", "value": "10"}]
    assert container["ports"] == [{"containerPort": 443, "protocol": "TCP"}]
    assert container["volumeMounts"] == [
        {"name": "cfg", "mountPath": "/cfg"},
        {"name": "data", "mountPath": "/data"},
    ]


async def test_diff_shows_what_apply_would_change_without_changing_it(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    same = await kubectl.run("diff", "-f", str(MANIFESTS / "deployment.yaml"))
    assert same.stdout == ""
    changed = tmp_path / "deployment.yaml"
    changed.write_text(
        (MANIFESTS / "deployment.yaml").read_text().replace("nginx:1.27", "nginx:1.28")
    )
    result = await kubectl.run("diff", "-f", str(changed), expect_failure=True)
    assert result.code == 1  # "differences found", not an error
    assert result.stderr == ""
    removed = [line[1:].strip() for line in result.stdout.splitlines() if line.startswith("-  ")]
    added = [line[1:].strip() for line in result.stdout.splitlines() if line.startswith("+  ")]
    assert "image: nginx:1.27" in removed
    assert "image: nginx:1.28" in added
    stored = apiserver.get_object("deployments", "web", "default")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
