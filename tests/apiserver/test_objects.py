"""Object rules over raw HTTP: uid, resourceVersion, generation, names, conflicts."""

from __future__ import annotations

import httpx

from trikopf.apiserver import ApiServer

CM = "/api/v1/namespaces/default/configmaps"


async def test_created_object_gets_uid_timestamp_and_version(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    response = await client.post(CM, json={"metadata": {"name": "one"}, "data": {"a": "b"}})
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "ConfigMap"
    assert body["apiVersion"] == "v1"
    meta = body["metadata"]
    assert meta["namespace"] == "default"
    assert len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    stored = apiserver.get_object("configmaps", "one", "default")
    assert stored is not None
    assert stored["metadata"]["uid"] == meta["uid"]
    assert stored["data"] == {"a": "b"}


async def test_resource_versions_increase_across_resources(client: httpx.AsyncClient) -> None:
    versions = []
    for path, name in [(CM, "a"), ("/api/v1/namespaces/default/secrets", "b"), (CM, "c")]:
        response = await client.post(path, json={"metadata": {"name": name}})
        versions.append(int(response.json()["metadata"]["resourceVersion"]))
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


async def test_creating_an_existing_name_is_409_already_exists(client: httpx.AsyncClient) -> None:
    await client.post(CM, json={"metadata": {"name": "dup"}})
    response = await client.post(CM, json={"metadata": {"name": "dup"}})
    assert response.status_code == 409
    status = response.json()
    assert status["kind"] == "Status"
    assert status["reason"] == "AlreadyExists"
    assert status["code"] == 409
    assert status["details"] == {"name": "dup", "kind": "configmaps"}
    assert status["message"] == 'configmaps "dup" already exists'


async def test_missing_object_is_404_with_details(client: httpx.AsyncClient) -> None:
    response = await client.get("/apis/apps/v1/namespaces/default/deployments/nope")
    assert response.status_code == 404
    status = response.json()
    assert status["reason"] == "NotFound"
    assert status["message"] == 'deployments.apps "nope" not found'
    assert status["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


async def test_stale_resource_version_on_replace_is_409_conflict(client: httpx.AsyncClient) -> None:
    created = (await client.post(CM, json={"metadata": {"name": "c"}})).json()
    first = dict(created, data={"x": "1"})
    response = await client.put(f"{CM}/c", json=first)
    assert response.status_code == 200
    stale = dict(created, data={"x": "2"})
    response = await client.put(f"{CM}/c", json=stale)
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"
    assert (await client.get(f"{CM}/c")).json()["data"] == {"x": "1"}


async def test_generate_name_makes_a_unique_name(client: httpx.AsyncClient) -> None:
    names = set()
    for _ in range(3):
        response = await client.post(CM, json={"metadata": {"generateName": "gen-"}})
        assert response.status_code == 201
        names.add(response.json()["metadata"]["name"])
    assert len(names) == 3
    assert all(name.startswith("gen-") and len(name) == 9 for name in names)


async def test_creating_in_a_missing_namespace_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/namespaces/absent/configmaps", json={"metadata": {"name": "x"}}
    )
    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "absent" not found'


async def test_invalid_name_is_422_invalid(client: httpx.AsyncClient, apiserver: ApiServer) -> None:
    response = await client.post(CM, json={"metadata": {"name": "Bad_Name"}})
    assert response.status_code == 422
    status = response.json()
    assert status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    assert apiserver.objects("configmaps", "default") == []
