"""Deletion modes: propagation policies, garbage collection, collections, namespaces, CRDs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.apiserver.crds import CRDS, KEX, create_crd
from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


def _ref(owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }


async def _owner_with_children(
    client: httpx.AsyncClient, *, block: bool = False, finalizers: tuple[str, ...] = ()
) -> dict[str, Any]:
    owner = (await client.post(CM, json={"metadata": {"name": "owner"}})).json()
    for name in ("child-1", "child-2"):
        meta: dict[str, Any] = {"name": name, "ownerReferences": [_ref(owner, block=block)]}
        if finalizers:
            meta["finalizers"] = list(finalizers)
        response = await client.post("/api/v1/namespaces/default/secrets", json={"metadata": meta})
        assert response.status_code == 201
    return owner


def _names(apiserver: ApiServer, resource: str) -> list[str]:
    return [o["metadata"]["name"] for o in apiserver.objects(resource, "default")]


@pytest.mark.parametrize("policy", [None, "Background"])
async def test_background_deletion_collects_dependents_after_the_owner(
    client: httpx.AsyncClient, apiserver: ApiServer, policy: str | None
) -> None:
    await _owner_with_children(client)
    params = {"propagationPolicy": policy} if policy else {}
    async with open_watch(
        client, "/api/v1/namespaces/default/secrets", resourceVersion="1"
    ) as secrets:
        await secrets.take(2)
        response = await client.delete(f"{CM}/owner", params=params)
        assert response.status_code == 200
        assert response.json()["status"] == "Success"
        deleted = await secrets.take(2)
    assert {e["type"] for e in deleted} == {"DELETED"}
    assert _names(apiserver, "configmaps") == []
    assert _names(apiserver, "secrets") == []


async def test_orphan_deletion_keeps_dependents_without_the_reference(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await _owner_with_children(client)
    response = await client.request(
        "DELETE",
        f"{CM}/owner",
        json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"},
    )
    assert response.status_code == 200
    assert _names(apiserver, "configmaps") == []
    children = apiserver.objects("secrets", "default")
    assert [c["metadata"]["name"] for c in children] == ["child-1", "child-2"]
    assert all("ownerReferences" not in c["metadata"] for c in children)


async def test_foreground_deletion_waits_for_blocking_dependents(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await _owner_with_children(client, block=True, finalizers=("test/hold",))
    response = await client.delete(f"{CM}/owner", params={"propagationPolicy": "Foreground"})
    assert response.status_code == 200
    owner = apiserver.get_object("configmaps", "owner", "default")
    assert owner is not None
    assert owner["metadata"]["deletionTimestamp"]
    assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    for name in ("child-1", "child-2"):
        child = apiserver.get_object("secrets", name, "default")
        assert child is not None
        assert child["metadata"]["deletionTimestamp"]
    await client.patch(
        "/api/v1/namespaces/default/secrets/child-1",
        json={"metadata": {"finalizers": None}},
        headers=MERGE,
    )
    assert apiserver.get_object("configmaps", "owner", "default") is not None
    await client.patch(
        "/api/v1/namespaces/default/secrets/child-2",
        json={"metadata": {"finalizers": None}},
        headers=MERGE,
    )
    assert apiserver.get_object("configmaps", "owner", "default") is None
    assert _names(apiserver, "secrets") == []


async def test_dependent_with_another_live_owner_survives_and_loses_one_reference(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    one = (await client.post(CM, json={"metadata": {"name": "one"}})).json()
    two = (await client.post(CM, json={"metadata": {"name": "two"}})).json()
    await client.post(
        "/api/v1/namespaces/default/secrets",
        json={"metadata": {"name": "shared", "ownerReferences": [_ref(one), _ref(two)]}},
    )
    await client.delete(f"{CM}/one")
    shared = apiserver.get_object("secrets", "shared", "default")
    assert shared is not None
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["two"]
    await client.delete(f"{CM}/two")
    assert apiserver.get_object("secrets", "shared", "default") is None


async def test_garbage_collection_follows_chains_of_owners(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    top = (await client.post(CM, json={"metadata": {"name": "top"}})).json()
    middle = (
        await client.post(CM, json={"metadata": {"name": "middle", "ownerReferences": [_ref(top)]}})
    ).json()
    await client.post(CM, json={"metadata": {"name": "bottom", "ownerReferences": [_ref(middle)]}})
    await client.delete(f"{CM}/top")
    assert _names(apiserver, "configmaps") == []


async def test_delete_preconditions_are_checked(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post(CM, json={"metadata": {"name": "p"}})
    response = await client.request(
        "DELETE", f"{CM}/p", json={"preconditions": {"uid": "not-the-uid"}}
    )
    assert response.status_code == 409
    assert apiserver.get_object("configmaps", "p", "default") is not None


async def test_unknown_propagation_policy_is_rejected(client: httpx.AsyncClient) -> None:
    await client.post(CM, json={"metadata": {"name": "p"}})
    response = await client.delete(f"{CM}/p", params={"propagationPolicy": "Sideways"})
    assert response.status_code == 422


async def test_delete_collection_deletes_only_the_selected_objects(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    for name, tier in [("a", "web"), ("b", "web"), ("c", "db")]:
        await client.post(CM, json={"metadata": {"name": name, "labels": {"tier": tier}}})
    response = await client.delete(CM, params={"labelSelector": "tier=web"})
    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in body["items"]] == ["a", "b"]
    assert _names(apiserver, "configmaps") == ["c"]


async def test_deleting_a_namespace_deletes_its_contents_then_itself(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": "doomed"}})
    base = "/api/v1/namespaces/doomed"
    await client.post(f"{base}/configmaps", json={"metadata": {"name": "plain"}})
    await client.post(f"{base}/secrets", json={"metadata": {"name": "held", "finalizers": ["x/y"]}})
    await client.post(CM, json={"metadata": {"name": "elsewhere"}})
    response = await client.delete(base)
    assert response.status_code == 200
    assert response.json()["status"]["phase"] == "Terminating"
    assert apiserver.get_object("configmaps", "plain", "doomed") is None
    assert apiserver.get_object("namespaces", "doomed") is not None
    refused = await client.post(f"{base}/configmaps", json={"metadata": {"name": "late"}})
    assert refused.status_code == 403
    await client.patch(f"{base}/secrets/held", json={"metadata": {"finalizers": []}}, headers=MERGE)
    assert apiserver.get_object("namespaces", "doomed") is None
    assert apiserver.get_object("configmaps", "elsewhere", "default") is not None


async def test_deleting_a_crd_deletes_its_objects_and_its_resource(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await create_crd(client)
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample"}
    await client.post(KEX, json={**body, "metadata": {"name": "free"}})
    await client.post(KEX, json={**body, "metadata": {"name": "held", "finalizers": ["x/y"]}})
    async with open_watch(client, KEX, resourceVersion="1") as events:
        await events.take(2)
        await client.delete(f"{CRDS}/kopfexamples.kopf.dev")
        assert (await client.get("/apis/kopf.dev/v1")).status_code == 200
        await client.patch(f"{KEX}/held", json={"metadata": {"finalizers": []}}, headers=MERGE)
        rest = await events.rest()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in rest] == [
        ("DELETED", "free"),
        ("MODIFIED", "held"),
        ("DELETED", "held"),
    ]
    assert (await client.get("/apis/kopf.dev/v1")).status_code == 404
    assert (await client.get(KEX)).status_code == 404
    assert apiserver.get_object("crds", "kopfexamples.kopf.dev") is None
