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


def contains(stored: Any, planned: Any) -> bool:
    """``stored`` has every field of ``planned`` with the same value (and may have defaults)."""
    if isinstance(planned, dict):
        return isinstance(stored, dict) and all(
            k in stored and contains(stored[k], v) for k, v in planned.items()
        )
    if isinstance(planned, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(planned)
            and all(contains(s, p) for s, p in zip(stored, planned, strict=True))
        )
    return bool(stored == planned)


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
    "job": (["job", "settings", "--image=busybox", "--", "echo", "hi"], "jobs"),
    "cronjob": (
        ["cronjob", "settings", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
        "cronjobs",
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
    cut = args.index("--") if "--" in args else len(args)  # flags go before a command
    dry_run = await kubectl.run(
        "create", *args[:cut], "--dry-run=client", "-o", "json", *args[cut:]
    )
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
        elif resource in ("deployments", "services", "jobs", "cronjobs"):
            assert contains(stored[key], value), key  # and the server's defaults
        else:
            assert stored[key] == value, key


async def test_create_fills_in_the_defaults_of_a_real_server(
    kubectl: Kubectl, apiserver: ApiServer
) -> None:
    await kubectl.run("create", "deployment", "web", "--image=nginx:1.27", "--port=80")
    deployment = apiserver.get_object("deployments", "web", "default")
    assert deployment is not None
    spec = deployment["spec"]
    assert (spec["replicas"], spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (
        1,
        10,
        600,
    )
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Always"
    assert pod["dnsPolicy"] == "ClusterFirst"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["schedulerName"] == "default-scheduler"
    (container,) = pod["containers"]
    assert container["imagePullPolicy"] == "IfNotPresent"  # a tag that is not "latest"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    # A pod of an untagged image pulls it always.
    await kubectl.run("run", "bare", "--image=busybox")
    bare = apiserver.get_object("pods", "bare", "default")
    assert bare is not None
    assert bare["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert bare["status"]["phase"] == "Pending"
    await kubectl.run("create", "service", "nodeport", "edge", "--tcp=8080")
    service = apiserver.get_object("services", "edge", "default")
    assert service is not None
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["sessionAffinity"] == "None"
    assert service["spec"]["externalTrafficPolicy"] == "Cluster"
    port = service["spec"]["ports"][0]
    assert (port["port"], port["protocol"], port["targetPort"]) == (8080, "TCP", 8080)


async def test_a_job_whose_pods_would_restart_always_is_refused(
    kubectl: Kubectl, apiserver: ApiServer, tmp_path: pathlib.Path
) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: once}\nspec:\n"
        "  template:\n    spec:\n      containers: [{name: c, image: busybox}]\n"
    )
    refused = await kubectl.run("create", "-f", str(manifest), expect_failure=True)
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always"' in refused.stderr
    assert apiserver.get_object("jobs", "once", "default") is None
    manifest.write_text(manifest.read_text() + "      restartPolicy: Never\n")
    await kubectl.run("create", "-f", str(manifest))
    job = apiserver.get_object("jobs", "once", "default")
    assert job is not None
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (1, 1)
    assert job["spec"]["backoffLimit"] == 6


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
