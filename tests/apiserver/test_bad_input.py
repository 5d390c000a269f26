"""Bad input gets the Status a real server gives; nothing crashes, nothing stored is harmed."""

from __future__ import annotations

import httpx
import pytest

from tests.apiserver.crds import KEX, create_crd
from trikopf.apiserver import ApiServer, open_apiserver

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def stored(client: httpx.AsyncClient, apiserver: ApiServer) -> dict:
    response = await client.post(CM, json={"metadata": {"name": "keep"}, "data": {"a": "1"}})
    assert response.status_code == 201
    obj = apiserver.get_object("configmaps", "keep", "default")
    assert obj is not None
    return obj


def _status(response: httpx.Response, code: int) -> dict:
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status"
    assert body["status"] == "Failure"
    assert body["code"] == code
    return body


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"metadata": {"name": ', "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"metadata: [unclosed", "application/yaml"),
        (b"", "application/json"),
    ],
)
async def test_malformed_bodies_are_400(
    client: httpx.AsyncClient, apiserver: ApiServer, stored: dict, content: bytes, content_type: str
) -> None:
    for method, path in (("POST", CM), ("PUT", f"{CM}/keep")):
        response = await client.request(
            method, path, content=content, headers={"Content-Type": content_type}
        )
        assert _status(response, 400)["reason"] == "BadRequest"
    assert apiserver.get_object("configmaps", "keep", "default") == stored


async def test_yaml_bodies_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CM,
        content=b"metadata:\n  name: from-yaml\ndata:\n  k: v\n",
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201
    assert response.json()["data"] == {"k": "v"}


async def test_unsupported_content_types_are_415(client: httpx.AsyncClient, stored: dict) -> None:
    response = await client.post(
        CM,
        content=b"\x6b\x38\x73\x00",
        headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
    )
    assert _status(response, 415)["reason"] == "UnsupportedMediaType"
    response = await client.patch(
        f"{CM}/keep", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert _status(response, 415)["reason"] == "UnsupportedMediaType"


async def test_strategic_merge_patch_on_a_custom_resource_is_415(client: httpx.AsyncClient) -> None:
    await create_crd(client)
    await client.post(
        KEX, json={"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "k"}}
    )
    response = await client.patch(
        f"{KEX}/k",
        json={"spec": {}},
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    _status(response, 415)


async def test_protobuf_only_accept_is_406(client: httpx.AsyncClient) -> None:
    response = await client.get(CM, headers={"Accept": "application/vnd.kubernetes.protobuf"})
    _status(response, 406)
    both = await client.get(
        CM, headers={"Accept": "application/vnd.kubernetes.protobuf, application/json"}
    )
    assert both.status_code == 200


async def test_wrong_kind_or_api_version_is_400(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    for body in (
        {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "x"}},
        {"kind": "ConfigMap", "apiVersion": "apps/v1", "metadata": {"name": "x"}},
    ):
        _status(await client.post(CM, json=body), 400)
    assert apiserver.get_object("configmaps", "x", "default") is None


async def test_bad_metadata_shapes_are_rejected(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    for meta, code in (
        ({"name": "x", "labels": {"a": 1}}, 400),
        ({"name": "x", "labels": {"bad key!": "v"}}, 422),
        ({"name": "x", "labels": {"k": "bad value!"}}, 422),
        ({"name": "x", "finalizers": "not-a-list"}, 400),
        ({"name": "x", "ownerReferences": [{"name": "o"}]}, 422),
        ({"name": "x" * 254}, 422),
        ({"name": "-x"}, 422),
        ({}, 422),
        ("string", 400),
    ):
        _status(await client.post(CM, json={"metadata": meta}), code)
    assert apiserver.objects("configmaps", "default") == []


async def test_bad_patches_leave_the_object_unchanged(
    client: httpx.AsyncClient, apiserver: ApiServer, stored: dict
) -> None:
    json_patch = {"Content-Type": "application/json-patch+json"}
    failed_test = [
        {"op": "test", "path": "/data/a", "value": "2"},
        {"op": "remove", "path": "/data"},
    ]
    _status(await client.patch(f"{CM}/keep", json=failed_test, headers=json_patch), 422)
    _status(await client.patch(f"{CM}/keep", json={"op": "add"}, headers=json_patch), 400)
    merge = {"Content-Type": "application/merge-patch+json"}
    _status(await client.patch(f"{CM}/keep", content=b"{oops", headers=merge), 400)
    _status(
        await client.patch(f"{CM}/keep", json={"metadata": {"name": "Bad_Name"}}, headers=merge),
        400,
    )
    _status(await client.patch(f"{CM}/missing", json={}, headers=merge), 404)
    assert apiserver.get_object("configmaps", "keep", "default") == stored


async def test_unknown_resources_and_methods(client: httpx.AsyncClient) -> None:
    assert (
        _status(await client.get("/api/v1/namespaces/default/widgets"), 404)["reason"] == "NotFound"
    )
    assert _status(await client.get("/apis/apps/v1/deployments/x"), 404)
    assert (
        _status(await client.post("/api/v1/configmaps", json={}), 405)["reason"]
        == "MethodNotAllowed"
    )
    assert _status(await client.put(CM, json={}), 405)
    assert _status(await client.delete("/api/v1/namespaces"), 405)
    assert _status(await client.get("/api/v1/namespaces/default/configmaps/x/status"), 404)


async def test_oversized_bodies_are_413() -> None:
    async with (
        open_apiserver(max_body_size=1024) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        big = {"metadata": {"name": "big"}, "data": {"k": "x" * 2000}}
        response = await client.post(CM, json=big)
        assert _status(response, 413)["reason"] == "RequestEntityTooLarge"
        assert server.get_object("configmaps", "big", "default") is None
        # The server is still serving.
        assert (await client.get(CM)).status_code == 200


async def test_invalid_query_values_are_400(client: httpx.AsyncClient) -> None:
    for params in (
        {"limit": "many"},
        {"watch": "1", "timeoutSeconds": "soon"},
        {"watch": "1", "resourceVersion": "-5"},
    ):
        _status(await client.get(CM, params=params), 400)
