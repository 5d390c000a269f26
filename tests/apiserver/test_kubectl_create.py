"""kubectl create <kind> against the embedded API server (kubectl >= 1.31 sends protobuf)."""

from __future__ import annotations

import base64
import json
import pathlib
from typing import Any

import pytest

from tests.apiserver.kubectl_support import Kubectl
from trikopf.apiserver import ApiServer
from trikopf.apiserver.tls import make_certificates

pytestmark = pytest.mark.kubectl


@pytest.fixture
def anyio_backend() -> str:
    # kubectl sees the same HTTP on either backend; test_kubectl_apply.py covers both, the
    # rest of the kubectl suite runs on Trio (the default) to keep the suite quick.
    return "trio"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A certificate and its key, made with the server's own certificate helper."""
    certificates = make_certificates(["example.com"])
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "tls.crt", folder / "tls.key"
    cert.write_bytes(certificates.cert_pem)
    key.write_bytes(certificates.key_pem)
    return str(cert), str(key)


def without_nulls(value: Any) -> Any:
    """JSON ``null`` in kubectl's output means "not set": drop it before comparing."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


CASES = {
    "configmap": (
        ["configmap", "settings", "--from-literal=color=blue", "--from-literal=empty="],
        "configmaps",
    ),
    "secret": (["secret", "generic", "settings", "--from-literal=password=s3cr3t"], "secrets"),
    "docker-registry": (
        [
            "secret",
            "docker-registry",
            "settings",
            "--docker-server=registry",
            "--docker-username=u",
            "--docker-password=p",
        ],
        "secrets",
    ),
    "namespace": (["namespace", "settings"], "namespaces"),
    "serviceaccount": (["serviceaccount", "settings"], "serviceaccounts"),
    "deployment": (
        ["deployment", "settings", "--image=nginx:1.27", "--port=80", "--replicas=0"],
        "deployments",
    ),
    "service": (
        ["service", "clusterip", "settings", "--tcp=80:8080", "--tcp=443:https"],
        "services",
    ),
    "externalname": (
        ["service", "externalname", "settings", "--external-name=example.com"],
        "services",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_create_stores_exactly_what_kubectl_built(
    case: str, kubectl: Kubectl, apiserver: ApiServer
) -> None:
    args, resource = CASES[case]
    dry_run = await kubectl.run("create", *args, "--dry-run=client", "-o", "json")
    planned = without_nulls(json.loads(dry_run.stdout))
    result = await kubectl.run("create", *args)
    assert result.stdout.endswith(" created\n")
    namespace = None if resource == "namespaces" else "default"
    stored = without_nulls(apiserver.get_object(resource, "settings", namespace))
    assert stored is not None
    planned.pop("status", None)
    for key, value in planned.items():
        if key == "metadata":
            for field, meta_value in value.items():
                assert stored["metadata"][field] == meta_value, field
        elif key == "spec" and resource == "namespaces":
            continue  # the server adds the "kubernetes" finalizer
        else:
            assert stored[key] == value, key


async def test_create_secret_tls_stores_the_certificate(
    kubectl: Kubectl, apiserver: ApiServer, tls_files: tuple[str, str]
) -> None:
    cert, key = tls_files
    await kubectl.run("create", "secret", "tls", "web-tls", f"--cert={cert}", f"--key={key}")
    stored = apiserver.get_object("secrets", "web-tls", "default")
    assert stored is not None
    assert stored["type"] == "kubernetes.io/tls"
    assert base64.b64decode(stored["data"]["tls.crt"]) == pathlib.Path(cert).read_bytes()
    assert base64.b64decode(stored["data"]["tls.key"]) == pathlib.Path(key).read_bytes()
