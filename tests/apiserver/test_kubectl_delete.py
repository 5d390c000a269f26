"""kubectl delete (finalizers, cascades) and wait --for=delete against the embedded API server."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import pytest

from tests.apiserver.kubectl_support import (
    MANIFESTS,
    Kubectl,
    read_until,
    stop,
    wait_until,
)
from trikopf.apiserver import ApiServer

pytestmark = pytest.mark.kubectl


@pytest.fixture
def anyio_backend() -> str:
    # kubectl sees the same HTTP on either backend; test_kubectl_apply.py covers both, the
    # rest of the kubectl suite runs on Trio (the default) to keep the suite quick.
    return "trio"


NAME = "kopf-example-1"
FINALIZER = "kopf.dev/test-finalizer"


def find(apiserver: ApiServer, resource: str = "kopfexamples", name: str = NAME) -> Any:
    return apiserver.get_object(resource, name, "default")


def find_crd(apiserver: ApiServer) -> Any:
    return apiserver.get_object("customresourcedefinitions", "kopfexamples.kopf.dev")


async def add_finalizer(kubectl: Kubectl) -> None:
    patch = f'{{"metadata": {{"finalizers": ["{FINALIZER}"]}}}}'
    await kubectl.run("patch", "kex", NAME, "--type=merge", "-p", patch)


async def remove_finalizer(kubectl: Kubectl) -> None:
    await kubectl.run(
        "patch",
        "kex",
        NAME,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/metadata/finalizers"}]',
    )


async def test_delete_removes_an_object_without_finalizers(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    result = await kubectl.run("delete", "kex", NAME)
    assert result.stdout == f'kopfexample.kopf.dev "{NAME}" deleted\n'
    assert find(apiserver) is None
    missing = await kubectl.run("delete", "kex", NAME, expect_failure=True)
    assert (
        missing.stderr
        == f'Error from server (NotFound): kopfexamples.kopf.dev "{NAME}" not found\n'
    )


async def test_delete_of_an_object_with_finalizers_waits_for_them(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    await add_finalizer(kubectl)
    result = await kubectl.run("delete", "kex", NAME, "--wait=false")
    assert result.stdout == f'kopfexample.kopf.dev "{NAME}" deleted\n'
    held = find(apiserver)
    assert held is not None
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == [FINALIZER]
    listed = await kubectl.run("get", "kex", "-o", "name")
    assert listed.stdout == f"kopfexample.kopf.dev/{NAME}\n"
    # A waiting delete returns only once the last finalizer is gone.
    waiting = await kubectl.open("delete", "kex", NAME, "--timeout=30s")
    output = await release_waiting(kubectl, apiserver, waiting, until="deleted")
    assert output == f'kopfexample.kopf.dev "{NAME}" deleted\n'
    assert waiting.returncode == 0
    assert find(apiserver) is None


async def test_wait_for_delete_returns_when_the_object_is_gone(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    await add_finalizer(kubectl)
    await kubectl.run("delete", "kex", NAME, "--wait=false")
    waiting = await kubectl.open("wait", "--for=delete", f"kex/{NAME}", "--timeout=30s")
    output = await release_waiting(kubectl, apiserver, waiting, until="condition met")
    assert output == f"kopfexample.kopf.dev/{NAME} condition met\n"
    assert waiting.returncode == 0
    assert find(apiserver) is None


async def release_waiting(
    kubectl: Kubectl, apiserver: ApiServer, waiting: anyio.abc.Process, *, until: str
) -> str:
    """Once ``waiting`` watches, remove the finalizer; return its output up to ``until``.

    Returns after the process has exited (within 30 s); it is stopped on any failure.
    """
    try:
        await wait_until(
            lambda: any(r.is_watch and "kopfexamples" in r.path for r in apiserver.requests)
        )
        assert waiting.returncode is None
        await remove_finalizer(kubectl)
        assert waiting.stdout is not None
        output = await read_until(waiting.stdout, until)
        with anyio.fail_after(30):
            await waiting.wait()
    finally:
        await stop(waiting)
    return output


async def make_family(apiserver: ApiServer) -> None:
    owner = apiserver.create_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}
    )
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    for name in ("child-1", "child-2"):
        apiserver.create_object(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "ownerReferences": [reference]},
            }
        )


async def test_delete_with_background_cascade_collects_dependents(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await make_family(apiserver)
    result = await kubectl.run("delete", "cm", "owner", "--cascade=background")
    assert result.stdout == 'configmap "owner" deleted\n'
    await kubectl.run(
        "wait", "--for=delete", "cm/child-1", "cm/child-2", "--timeout=30s", expect_stderr=""
    )
    assert find(apiserver, "configmaps", "owner") is None
    assert find(apiserver, "configmaps", "child-1") is None
    assert find(apiserver, "configmaps", "child-2") is None


async def test_delete_with_foreground_cascade_removes_dependents_first(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await make_family(apiserver)
    result = await kubectl.run("delete", "cm", "owner", "--cascade=foreground", "--timeout=30s")
    assert result.stdout == 'configmap "owner" deleted\n'
    # kubectl waited for the owner, which goes only after its blocking dependents.
    assert find(apiserver, "configmaps", "owner") is None
    assert find(apiserver, "configmaps", "child-1") is None
    assert find(apiserver, "configmaps", "child-2") is None
    deletes = [r for r in apiserver.requests if r.method == "DELETE"]
    assert [r.path for r in deletes] == ["/api/v1/namespaces/default/configmaps/owner"]


async def test_delete_with_orphan_cascade_keeps_dependents(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await make_family(apiserver)
    result = await kubectl.run("delete", "cm", "owner", "--cascade=orphan")
    assert result.stdout == 'configmap "owner" deleted\n'
    assert find(apiserver, "configmaps", "owner") is None
    for name in ("child-1", "child-2"):
        child = find(apiserver, "configmaps", name)
        assert child is not None
        assert not child["metadata"].get("ownerReferences")


async def test_delete_of_a_crd_removes_its_objects_and_resource(
    kubectl: Kubectl, apiserver: ApiServer, example: None
) -> None:
    result = await kubectl.run("delete", "-f", str(MANIFESTS / "crd.yaml"), "--timeout=30s")
    assert (
        result.stdout
        == 'customresourcedefinition.apiextensions.k8s.io "kopfexamples.kopf.dev" deleted\n'
    )
    assert find_crd(apiserver) is None
    # kubectl still has the resource in its discovery cache; listing it is a 404 now.
    gone = await kubectl.run("get", "kex", expect_failure=True)
    assert gone.stderr.startswith("Error from server (NotFound): ")
    resources = await kubectl.run("api-resources", "-o", "name")
    assert "kopfexamples.kopf.dev" not in resources.stdout.split()
