"""kubectl get, describe and get --watch against the embedded API server."""

from __future__ import annotations

import json
import re

import pytest

from tests.apiserver.kubectl_support import MANIFESTS, Kubectl, read_until, stop
from trikopf.apiserver import ApiServer

pytestmark = pytest.mark.kubectl


@pytest.fixture
def anyio_backend() -> str:
    # kubectl sees the same HTTP on either backend; test_kubectl_apply.py covers both, the
    # rest of the kubectl suite runs on Trio (the default) to keep the suite quick.
    return "trio"


def rows(text: str) -> list[list[str]]:
    """Split a kubectl table into cells (columns are separated by 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


async def test_get_shows_the_crd_printer_columns(kubectl: Kubectl, apiserver: ApiServer) -> None:
    await kubectl.apply_example()
    result = await kubectl.run("get", "kopfexamples")
    table = rows(result.stdout)
    assert table[0] == ["NAME", "DURATION", "CHILDREN", "MESSAGE", "AGE"]
    assert table[1][:2] == ["kopf-example-1", "1m"]
    assert table[1][-1].endswith("s")  # an age such as "0s", computed from a date column
    wide = rows((await kubectl.run("get", "kex", "-o", "wide")).stdout)
    assert wide[0] == ["NAME", "DURATION", "CHILDREN", "MESSAGE", "FIELD", "AGE"]
    assert wide[1][:2] == ["kopf-example-1", "1m"]
    assert "value" in wide[1]


async def test_get_by_short_name_plural_kind_and_category(kubectl: Kubectl) -> None:
    await kubectl.apply_example()
    for name in ("kex", "kexs", "kopfexample", "KopfExample", "kopfexamples.kopf.dev"):
        result = await kubectl.run("get", name, "-o", "name")
        assert result.stdout == "kopfexample.kopf.dev/kopf-example-1\n", name
    everything = await kubectl.run("get", "all", "-o", "name")
    assert "kopfexample.kopf.dev/kopf-example-1" in everything.stdout.splitlines()


async def test_get_output_yaml_and_json_show_the_stored_object(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await kubectl.apply_example()
    stored = apiserver.get_object("kopfexamples", "kopf-example-1", "default")
    assert stored is not None
    # kubectl hides the ownership bookkeeping unless --show-managed-fields.
    assert stored["metadata"].pop("managedFields")
    as_yaml = (await kubectl.run("get", "kex", "kopf-example-1", "-o", "yaml")).yaml()
    assert as_yaml == stored
    as_json = json.loads((await kubectl.run("get", "kex", "-o", "json")).stdout)
    assert as_json["kind"] == "List"
    assert as_json["items"] == [stored]
    jsonpath = await kubectl.run("get", "kex", "kopf-example-1", "-o", "jsonpath={.spec.items[1]}")
    assert jsonpath.stdout == "item2"


async def test_get_builtin_kinds_with_their_columns(kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", str(MANIFESTS / "configmap.yaml"))
    await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    configmaps = rows((await kubectl.run("get", "configmaps")).stdout)
    assert configmaps[0] == ["NAME", "DATA", "AGE"]
    assert configmaps[1][:2] == ["settings", "2"]
    deployments = rows((await kubectl.run("get", "deploy", "-o", "wide")).stdout)
    assert deployments[0] == [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]
    assert deployments[1][:4] == ["web", "0/2", "0", "0"]
    assert deployments[1][5:] == ["app,sidecar", "nginx:1.27,busybox:1.36", "app=web"]
    namespaces = rows((await kubectl.run("get", "ns")).stdout)
    assert [row[:2] for row in namespaces[1:]] == [
        ["default", "Active"],
        ["kube-public", "Active"],
        ["kube-system", "Active"],
    ]


async def test_get_with_label_and_field_selectors(kubectl: Kubectl, apiserver: ApiServer) -> None:
    for name, tier in (("a", "front"), ("b", "back"), ("c", "front")):
        apiserver.create_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "labels": {"tier": tier}},
            }
        )
    front = await kubectl.run("get", "cm", "-l", "tier=front", "-o", "name")
    assert front.stdout == "configmap/a\nconfigmap/c\n"
    not_front = await kubectl.run("get", "cm", "-l", "tier notin (front)", "-o", "name")
    assert not_front.stdout == "configmap/b\n"
    by_name = await kubectl.run("get", "cm", "--field-selector", "metadata.name=b", "-o", "name")
    assert by_name.stdout == "configmap/b\n"
    bad = await kubectl.run("get", "cm", "-l", "tier in (", expect_failure=True)
    assert bad.stderr.startswith("Error from server (BadRequest): ")
    assert "found 'end of string', expected: ')'" in bad.stderr
    unsupported = await kubectl.run(
        "get", "cm", "--field-selector", "data.x=1", expect_failure=True
    )
    assert "field label not supported: data.x" in unsupported.stderr
    empty = await kubectl.run(
        "get", "cm", "-l", "tier=none", expect_stderr="No resources found in default namespace.\n"
    )
    assert empty.stdout == ""


async def test_describe_shows_the_object(kubectl: Kubectl) -> None:
    await kubectl.apply_example()
    result = await kubectl.run("describe", "kex", "kopf-example-1")
    text = result.stdout
    assert "Name:         kopf-example-1" in text
    assert "Namespace:    default" in text
    assert "somelabel=somevalue" in text
    assert "API Version:  kopf.dev/v1" in text
    assert "Kind:         KopfExample" in text
    assert "Duration:  1m" in text
    configmap = await kubectl.run("apply", "-f", str(MANIFESTS / "configmap.yaml"))
    assert configmap.stdout == "configmap/settings created\n"
    described = await kubectl.run("describe", "configmap", "settings")
    assert "color:\n----\nblue" in described.stdout


async def test_get_watch_sees_changes_as_they_happen(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await kubectl.apply_example()
    process = await kubectl.open(
        "get", "kex", "--watch", "-o", "custom-columns=NAME:.metadata.name,FIELD:.spec.field"
    )
    try:
        assert process.stdout is not None
        seen = await read_until(process.stdout, "value")
        await kubectl.run(
            "patch", "kex", "kopf-example-1", "--type=merge", "-p", '{"spec": {"field": "changed"}}'
        )
        seen += await read_until(process.stdout, "changed")
        await kubectl.run("delete", "kex", "kopf-example-1", "--wait=false")
        # The deletion arrives as the last state of the object.
        lines = [line.split() for line in seen.splitlines() if line.strip()]
        assert lines[0] == ["NAME", "FIELD"]
        assert ["kopf-example-1", "value"] in lines
        assert ["kopf-example-1", "changed"] in lines
    finally:
        await stop(process)


async def test_get_watch_prints_printer_columns_for_every_change(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await kubectl.apply_example()
    process = await kubectl.open("get", "kex", "--watch")
    try:
        assert process.stdout is not None
        seen = await read_until(process.stdout, "kopf-example-1")
        patch = '{"spec": {"duration": "7m"}}'
        await kubectl.run("patch", "kex", "kopf-example-1", "--type=merge", "-p", patch)
        seen += await read_until(process.stdout, "7m")
    finally:
        await stop(process)
    table = rows(seen)
    # The header comes once; every event is a row of the CRD's printer columns.
    assert table[0] == ["NAME", "DURATION", "CHILDREN", "MESSAGE", "AGE"]
    assert [row[:2] for row in table[1:]] == [["kopf-example-1", "1m"], ["kopf-example-1", "7m"]]
