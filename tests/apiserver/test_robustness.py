"""A deterministic barrage of odd requests: never a 500, never a crash, stored objects intact."""

from __future__ import annotations

import random

import anyio
import httpx

from trikopf.apiserver import ApiServer

PATHS = [
    "/",
    "/api",
    "/api/v1",
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/configmaps/keep",
    "/api/v1/namespaces/default/configmaps/keep/status",
    "/api/v1/namespaces/default/pods/p/status",
    "/api/v1/namespaces/%2e%2e/configmaps",
    "/api/v1/namespaces//configmaps",
    "/api/v1/watch",
    "/api/v1/watch/namespaces",
    "/apis/apps/v1/namespaces/default/deployments/d/scale",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/kopf.dev/v1/namespaces/default/kopfexamples",
    "/apis/a/b/c/d/e/f/g/h",
    "/api/v1/namespaces/default/configmaps/a/b/c",
]
BODIES = [
    b"",
    b"null",
    b"{}",
    b"[]",
    b'"text"',
    b"12",
    b'{"metadata": null}',
    b'{"metadata": {"name": 5}}',
    b'{"metadata": {"name": "ok", "labels": []}}',
    b'{"metadata": {"name": "ok", "ownerReferences": {"uid": 1}}}',
    b'{"metadata": {"generateName": 7}}',
    b'{"spec": {"group": 1}, "metadata": {"name": "x.y"}}',
    b'[{"op": "replace", "path": "/metadata", "value": 1}]',
    b'[{"op": "remove", "path": "/metadata/name"}]',
    b'{"metadata": {"finalizers": [1, 2]}}',
    b"\x00\x01\x02",
    b"{" * 2000,
    b"a: [b, {c: d}]",
]
TYPES = [
    "application/json",
    "application/yaml",
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/html",
    "",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
QUERIES = [
    {},
    {"watch": "1", "timeoutSeconds": "1"},
    {"watch": "true", "resourceVersion": "99999999999999999999", "timeoutSeconds": "1"},
    {"labelSelector": "a in (", "limit": "-1"},
    {"fieldSelector": "metadata.name=x,,", "continue": "e30"},
    {"dryRun": "All", "fieldManager": "m" * 300, "propagationPolicy": "Orphan"},
    {"fieldValidation": "Sideways"},
]


async def test_odd_requests_never_crash_the_server_or_harm_stored_objects(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post(
        "/api/v1/namespaces/default/configmaps",
        json={"metadata": {"name": "keep"}, "data": {"a": "1"}},
    )
    before = apiserver.get_object("configmaps", "keep", "default")
    rng = random.Random(20260101)
    statuses: dict[int, int] = {}
    with anyio.fail_after(60):
        for _ in range(400):
            method = rng.choice(METHODS)
            path = rng.choice(PATHS)
            body = rng.choice(BODIES)
            headers = {"Content-Type": rng.choice(TYPES)}
            # Watches (by parameter or legacy path) must end on their own.
            params = {**rng.choice(QUERIES), "timeoutSeconds": "1"}
            response = await client.request(
                method, path, content=body, headers=headers, params=params
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500 or response.status_code == 504, (
                method,
                path,
                body[:80],
                headers,
                params,
                response.text[:300],
            )
            if response.status_code >= 400 and method != "HEAD" and response.content:
                assert response.json()["kind"] == "Status"
    assert {200, 400, 404, 405} <= set(statuses)  # the barrage reached many kinds of answer
    assert (await client.get("/api/v1/namespaces")).status_code == 200
    after = apiserver.get_object("configmaps", "keep", "default")
    if after is not None and before is not None:
        # Only well-formed writes may have changed it; it must still be a valid object.
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        assert after["kind"] == "ConfigMap"
