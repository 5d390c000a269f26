"""The scale subresource of deployments and of CRDs that declare one."""

from __future__ import annotations

import httpx

from tests.apiserver.crds import CRDS, KEX, kopfexample_crd
from trikopf.apiserver import ApiServer

DEPLOY = "/apis/apps/v1/namespaces/default/deployments"


async def test_deployment_scale_reads_and_writes_spec_replicas(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post(
        DEPLOY,
        json={
            "metadata": {"name": "d"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}}},
        },
    )
    scale = (await client.get(f"{DEPLOY}/d/scale")).json()
    assert scale["kind"] == "Scale"
    assert scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=d"}
    scale["spec"]["replicas"] = 5
    put = await client.put(f"{DEPLOY}/d/scale", json=scale)
    assert put.status_code == 200
    assert put.json()["spec"] == {"replicas": 5}
    stored = apiserver.get_object("deployments", "d", "default")
    assert stored is not None
    assert stored["spec"]["replicas"] == 5
    assert stored["metadata"]["generation"] == 2
    stale = await client.put(f"{DEPLOY}/d/scale", json=scale)
    assert stale.status_code == 409  # the Scale carried an old resourceVersion
    patched = await client.patch(
        f"{DEPLOY}/d/scale",
        json={"spec": {"replicas": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.json()["spec"] == {"replicas": 1}
    negative = await client.patch(
        f"{DEPLOY}/d/scale",
        json={"spec": {"replicas": -1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert negative.status_code == 422


async def test_crd_scale_subresource_uses_its_paths(client: httpx.AsyncClient) -> None:
    crd = kopfexample_crd()
    crd["spec"]["versions"][0]["subresources"]["scale"] = {
        "specReplicasPath": ".spec.size",
        "statusReplicasPath": ".status.size",
    }
    assert (await client.post(CRDS, json=crd)).status_code == 201
    resources = (await client.get("/apis/kopf.dev/v1")).json()["resources"]
    scale_entry = next(r for r in resources if r["name"] == "kopfexamples/scale")
    assert (scale_entry["group"], scale_entry["version"], scale_entry["kind"]) == (
        "autoscaling",
        "v1",
        "Scale",
    )
    await client.post(
        KEX,
        json={
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfExample",
            "metadata": {"name": "k"},
            "spec": {"size": 3},
        },
    )
    assert (await client.get(f"{KEX}/k/scale")).json()["spec"] == {"replicas": 3}
    response = await client.patch(
        f"{KEX}/k/scale",
        json={"spec": {"replicas": 4}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 200
    assert (await client.get(f"{KEX}/k")).json()["spec"] == {"size": 4}


async def test_resources_without_scale_have_no_scale_subresource(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}})
    assert (await client.get("/api/v1/namespaces/default/configmaps/c/scale")).status_code == 404
