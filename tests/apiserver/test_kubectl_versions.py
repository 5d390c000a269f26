"""Every kubectl from 1.27 to 1.33 installed here works against the embedded API server.

The full kubectl suite runs kubectl 1.32 (on the PATH) and 1.27; this smoke test covers the
versions between and after them with the commands whose requests change across releases:
discovery and OpenAPI (apply's validation and patch calculation, explain), Tables (get).
"""

from __future__ import annotations

import pathlib

import pytest

from tests.apiserver.kubectl_support import MANIFESTS, OLD_KUBECTL, Kubectl
from trikopf.apiserver import ApiServer

pytestmark = pytest.mark.kubectl


@pytest.fixture
def anyio_backend() -> str:
    # kubectl sees the same HTTP on either backend; test_kubectl_apply.py covers both, the
    # rest of the kubectl suite runs on Trio (the default) to keep the suite quick.
    return "trio"


VERSIONS = ["1.28", "1.29", "1.30", "1.31", "1.33"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_kubectl_version_applies_gets_explains_and_deletes(
    version: str, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    kubectl = Kubectl.for_server(
        str(OLD_KUBECTL.with_name(f"kubectl.{version}")), apiserver, tmp_path
    )
    await kubectl.apply_crd()
    created = await kubectl.run("apply", "-f", str(MANIFESTS / "obj.yaml"))
    assert created.stdout == "kopfexample.kopf.dev/kopf-example-1 created\n"
    unchanged = await kubectl.run("apply", "-f", str(MANIFESTS / "obj.yaml"))
    assert unchanged.stdout == "kopfexample.kopf.dev/kopf-example-1 unchanged\n"
    table = await kubectl.run("get", "kex")
    assert table.stdout.split()[:6] == [
        "NAME",
        "DURATION",
        "CHILDREN",
        "MESSAGE",
        "AGE",
        "kopf-example-1",
    ]
    explained = await kubectl.run("explain", "kex.spec.field")
    assert "A free-form value that handlers watch for changes." in explained.stdout
    await kubectl.run("apply", "-f", str(MANIFESTS / "deployment.yaml"))
    patched = await kubectl.run("patch", "deploy", "web", "-p", '{"spec": {"replicas": 3}}')
    assert patched.stdout == "deployment.apps/web patched\n"
    deleted = await kubectl.run("delete", "kex", "kopf-example-1")
    assert deleted.stdout == 'kopfexample.kopf.dev "kopf-example-1" deleted\n'
    assert apiserver.get_object("kopfexamples", "kopf-example-1", "default") is None
    stored = apiserver.get_object("deployments", "web", "default")
    assert stored is not None
    assert stored["spec"]["replicas"] == 3
