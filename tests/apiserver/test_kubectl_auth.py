"""kubectl over TLS with a bearer token, as the server's kubeconfig sets them up."""

from __future__ import annotations

import pathlib

import pytest

from tests.apiserver.kubectl_support import KUBECTL_VERSIONS, Kubectl
from trikopf.apiserver import open_apiserver

pytestmark = pytest.mark.kubectl


@pytest.fixture
def anyio_backend() -> str:
    # See test_kubectl_read.py: the kubectl suite runs on Trio but for test_kubectl_apply.py.
    return "trio"


@pytest.mark.parametrize("binary", KUBECTL_VERSIONS)
async def test_kubectl_trusts_the_generated_ca_and_sends_the_token(
    binary: str, tmp_path: pathlib.Path
) -> None:
    async with open_apiserver(tls=True, token="s3cret") as server:
        assert server.url.startswith("https://")
        kubectl = Kubectl.for_server(binary, server, tmp_path)
        namespaces = await kubectl.run("get", "namespaces", "-o", "name")
        assert (
            namespaces.stdout == "namespace/default\nnamespace/kube-public\nnamespace/kube-system\n"
        )
        created = await kubectl.run("create", "configmap", "over-tls", "--from-literal=a=b")
        assert created.stdout == "configmap/over-tls created\n"
        assert server.get_object("configmaps", "over-tls", "default") is not None
        refused = await kubectl.run("--token=wrong", "get", "namespaces", expect_failure=True)
        assert refused.stderr == "error: You must be logged in to the server (Unauthorized)\n"
