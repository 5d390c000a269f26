"""Reads: get, lists with label and field selectors, pagination, cluster-wide lists."""

from __future__ import annotations

import httpx
import pytest

from tests.apiserver.crds import CRDS, KEX, kopfexample_crd
from trikopf.apiserver import ApiServer

CM = "/api/v1/namespaces/default/configmaps"


async def _seed(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    for namespace, name, labels in [
        ("default", "a", {"app": "web", "tier": "front"}),
        ("default", "b", {"app": "web", "tier": "back"}),
        ("default", "c", {"app": "db"}),
        ("default", "d", {}),
        ("other", "e", {"app": "web"}),
    ]:
        response = await client.post(
            f"/api/v1/namespaces/{namespace}/configmaps",
            json={"metadata": {"name": name, "labels": labels}},
        )
        assert response.status_code == 201


async def _names(client: httpx.AsyncClient, path: str = CM, **params: str) -> list[str]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c", "d"]),
        ("app=web,tier=back", ["b"]),
    ],
)
async def test_list_with_label_selectors(
    client: httpx.AsyncClient, selector: str, expected: list[str]
) -> None:
    await _seed(client)
    assert await _names(client, labelSelector=selector) == expected


async def test_list_with_field_selectors(client: httpx.AsyncClient) -> None:
    await _seed(client)
    assert await _names(client, fieldSelector="metadata.name=c") == ["c"]
    assert await _names(client, fieldSelector="metadata.name!=c") == ["a", "b", "d"]
    assert await _names(client, "/api/v1/configmaps", fieldSelector="metadata.namespace=other") == [
        "e"
    ]


async def test_event_field_selectors_on_the_involved_object(client: httpx.AsyncClient) -> None:
    for name, kind in [("ev1", "Pod"), ("ev2", "KopfExample")]:
        await client.post(
            "/api/v1/namespaces/default/events",
            json={
                "metadata": {"name": name},
                "involvedObject": {"kind": kind, "name": "x", "namespace": "default"},
                "reason": "Test",
                "message": "m",
            },
        )
    path = "/api/v1/namespaces/default/events"
    assert await _names(client, path, fieldSelector="involvedObject.kind=KopfExample") == ["ev2"]


async def test_bad_selectors_are_400(client: httpx.AsyncClient) -> None:
    for params in (
        {"labelSelector": "app in (web"},
        {"labelSelector": "!!x"},
        {"fieldSelector": "spec.nothing=1"},
    ):
        response = await client.get(CM, params=params)
        assert response.status_code == 400, params
        assert response.json()["reason"] == "BadRequest"


async def test_cluster_wide_list_covers_every_namespace(client: httpx.AsyncClient) -> None:
    await _seed(client)
    response = await client.get("/api/v1/configmaps")
    body = response.json()
    assert body["kind"] == "ConfigMapList"
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]] == [
        ("default", "a"),
        ("default", "b"),
        ("default", "c"),
        ("default", "d"),
        ("other", "e"),
    ]


async def test_list_metadata_carries_the_current_version(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await _seed(client)
    body = (await client.get(CM)).json()
    assert body["metadata"]["resourceVersion"] == str(apiserver.store.rv)
    assert body["apiVersion"] == "v1"
    # Built-in list items carry no kind/apiVersion, as on a real server.
    assert "kind" not in body["items"][0]


async def test_pagination_with_limit_and_continue_visits_every_object_once(
    client: httpx.AsyncClient,
) -> None:
    await _seed(client)
    seen: list[str] = []
    params = {"limit": "2"}
    versions = set()
    while True:
        body = (await client.get("/api/v1/configmaps", params=params)).json()
        seen.extend(i["metadata"]["name"] for i in body["items"])
        versions.add(body["metadata"]["resourceVersion"])
        token = body["metadata"].get("continue")
        if not token:
            assert "remainingItemCount" not in body["metadata"]
            break
        assert body["metadata"]["remainingItemCount"] == 5 - len(seen)
        params = {"limit": "2", "continue": token}
    assert seen == ["a", "b", "c", "d", "e"]
    assert len(versions) == 1


async def test_pagination_combines_with_selectors(client: httpx.AsyncClient) -> None:
    await _seed(client)
    first = (
        await client.get("/api/v1/configmaps", params={"limit": "1", "labelSelector": "app=web"})
    ).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a"]
    second = (
        await client.get(
            "/api/v1/configmaps",
            params={
                "limit": "5",
                "labelSelector": "app=web",
                "continue": first["metadata"]["continue"],
            },
        )
    ).json()
    assert [i["metadata"]["name"] for i in second["items"]] == ["b", "e"]


async def test_bad_continue_token_is_400_and_expired_one_is_410(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await _seed(client)
    assert (await client.get(CM, params={"continue": "!!garbage"})).status_code == 400
    token = (await client.get(CM, params={"limit": "1"})).json()["metadata"]["continue"]
    await client.post(CM, json={"metadata": {"name": "later"}})
    apiserver.faults.compact()
    response = await client.get(CM, params={"limit": "1", "continue": token})
    assert response.status_code == 410
    assert response.json()["reason"] == "Expired"


async def test_list_at_a_future_resource_version_is_a_timeout(client: httpx.AsyncClient) -> None:
    response = await client.get(CM, params={"resourceVersion": "999999"})
    assert response.status_code == 504
    assert response.json()["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    assert (await client.get(CM, params={"resourceVersion": "abc"})).status_code == 400


async def test_get_as_yaml_when_asked(client: httpx.AsyncClient) -> None:
    await client.post(CM, json={"metadata": {"name": "y"}, "data": {"k": "v"}})
    response = await client.get(f"{CM}/y", headers={"Accept": "application/yaml"})
    assert response.headers["content-type"] == "application/yaml"
    assert "kind: ConfigMap" in response.text


async def test_get_as_table_when_asked(client: httpx.AsyncClient) -> None:
    await client.post(CM, json={"metadata": {"name": "t"}, "data": {"k": "v"}})
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    body = (await client.get(CM, headers={"Accept": accept})).json()
    assert body["kind"] == "Table"
    assert body["rows"][0]["cells"][0] == "t"


async def test_later_pages_show_the_snapshot_of_the_first_page(client: httpx.AsyncClient) -> None:
    await _seed(client)
    first = (await client.get(CM, params={"limit": "2"})).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["a", "b"]
    # Changes after the first page: a new object, a deletion, a modification.
    await client.post(CM, json={"metadata": {"name": "bb"}})
    await client.delete(f"{CM}/c")
    await client.patch(
        f"{CM}/d",
        json={"data": {"new": "1"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    rest = (
        await client.get(CM, params={"limit": "10", "continue": first["metadata"]["continue"]})
    ).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c", "d"]
    assert "data" not in rest["items"][1]
    assert rest["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


async def test_crd_selectable_fields_work_in_field_selectors(client: httpx.AsyncClient) -> None:
    crd = kopfexample_crd()
    crd["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.color"}]
    assert (await client.post(CRDS, json=crd)).status_code == 201
    for name, color in [("r", "red"), ("g", "green")]:
        await client.post(
            KEX,
            json={
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfExample",
                "metadata": {"name": name},
                "spec": {"color": color},
            },
        )
    assert await _names(client, KEX, fieldSelector="spec.color=green") == ["g"]
    assert (await client.get(KEX, params={"fieldSelector": "spec.size=1"})).status_code == 400
