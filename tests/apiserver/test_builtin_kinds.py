"""Every built-in kind is stored as objects: create, get, list, watch, delete."""

from __future__ import annotations

import httpx
import pytest

from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer

KINDS = [
    ("/api/v1", "configmaps", "ConfigMap", True),
    ("/api/v1", "secrets", "Secret", True),
    ("/api/v1", "serviceaccounts", "ServiceAccount", True),
    ("/api/v1", "services", "Service", True),
    ("/api/v1", "pods", "Pod", True),
    ("/api/v1", "events", "Event", True),
    ("/apis/events.k8s.io/v1", "events", "Event", True),
    ("/apis/apps/v1", "deployments", "Deployment", True),
    ("/apis/apps/v1", "replicasets", "ReplicaSet", True),
    ("/apis/apps/v1", "statefulsets", "StatefulSet", True),
    ("/apis/apps/v1", "daemonsets", "DaemonSet", True),
    ("/apis/batch/v1", "jobs", "Job", True),
    ("/apis/batch/v1", "cronjobs", "CronJob", True),
    ("/apis/networking.k8s.io/v1", "ingresses", "Ingress", True),
    ("/api/v1", "endpoints", "Endpoints", True),
    ("/api/v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
    ("/api/v1", "resourcequotas", "ResourceQuota", True),
    ("/api/v1", "limitranges", "LimitRange", True),
    ("/api/v1", "nodes", "Node", False),
    ("/apis/coordination.k8s.io/v1", "leases", "Lease", True),
    ("/api/v1", "namespaces", "Namespace", False),
    (
        "/apis/admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
    ),
    (
        "/apis/admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
    ),
]


@pytest.mark.parametrize(
    ("prefix", "plural", "kind", "namespaced"), KINDS, ids=[f"{k[0]}/{k[1]}" for k in KINDS]
)
async def test_built_in_kind_round_trips(
    client: httpx.AsyncClient,
    apiserver: ApiServer,
    prefix: str,
    plural: str,
    kind: str,
    namespaced: bool,
) -> None:
    base = f"{prefix}/namespaces/default/{plural}" if namespaced else f"{prefix}/{plural}"
    api_version = prefix.removeprefix("/api/").removeprefix("/apis/")
    async with open_watch(client, base, resourceVersion=str(apiserver.store.rv)) as events:
        created = await client.post(
            base, json={"metadata": {"name": "sample", "labels": {"t": "1"}}}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["kind"] == kind
        assert body["apiVersion"] == api_version
        assert (await events.next())["type"] == "ADDED"
        got = await client.get(f"{base}/sample")
        assert got.json()["metadata"]["uid"] == body["metadata"]["uid"]
        listed = await client.get(base, params={"labelSelector": "t=1"})
        assert listed.json()["kind"] == f"{kind}List"
        assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["sample"]
        deleted = await client.delete(f"{base}/sample")
        assert deleted.status_code == 200
        if plural != "namespaces":
            assert (await events.next())["type"] == "DELETED"
            assert (await client.get(f"{base}/sample")).status_code == 404


async def test_pods_start_pending_and_deployments_drop_status_on_create(
    client: httpx.AsyncClient,
) -> None:
    pod = await client.post(
        "/api/v1/namespaces/default/pods",
        json={
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Running"},
        },
    )
    assert pod.json()["status"] == {"phase": "Pending"}
    deployment = await client.post(
        "/apis/apps/v1/namespaces/default/deployments",
        json={"metadata": {"name": "d"}, "spec": {"replicas": 1}, "status": {"replicas": 5}},
    )
    assert "status" not in deployment.json()
    assert deployment.json()["metadata"]["generation"] == 1


async def test_every_namespace_has_a_default_service_account_made_again_when_deleted(
    apiserver: ApiServer,
) -> None:
    async with httpx.AsyncClient(base_url=apiserver.url) as client:
        for name in ("default", "kube-system", "kube-public"):
            found = await client.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            assert found.status_code == 200, name
        assert (
            await client.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
        ).status_code == 201
        accounts = "/api/v1/namespaces/team/serviceaccounts"
        listed = (await client.get(accounts)).json()["items"]
        assert [a["metadata"]["name"] for a in listed] == ["default"]
        first_uid = listed[0]["metadata"]["uid"]
        assert (await client.delete(f"{accounts}/default")).status_code == 200
        again = (await client.get(f"{accounts}/default")).json()
        assert again["metadata"]["uid"] != first_uid
        # A namespace being deleted takes its account along, and nothing makes it again.
        assert (await client.delete("/api/v1/namespaces/team")).status_code == 200
        assert (await client.get("/api/v1/namespaces/team")).status_code == 404
        assert (await client.get(f"{accounts}/default")).status_code == 404
