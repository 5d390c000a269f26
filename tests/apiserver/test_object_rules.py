"""Generation, the status subresource, finalizers, dry runs, no-op writes and other rules."""

from __future__ import annotations

import base64

import httpx

from tests.apiserver.crds import KEX, create_crd
from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer

CM = "/api/v1/namespaces/default/configmaps"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def _kex(client: httpx.AsyncClient, name: str = "k", **extra: object) -> dict:
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": name}}
    body.update(extra)
    response = await client.post(KEX, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_generation_bumps_on_spec_changes_only(client: httpx.AsyncClient) -> None:
    await create_crd(client)
    created = await _kex(client, spec={"a": 1})
    assert created["metadata"]["generation"] == 1
    meta_only = await client.patch(
        f"{KEX}/k", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE
    )
    assert meta_only.json()["metadata"]["generation"] == 1
    spec = await client.patch(f"{KEX}/k", json={"spec": {"a": 2}}, headers=MERGE)
    assert spec.json()["metadata"]["generation"] == 2
    status = await client.patch(f"{KEX}/k/status", json={"status": {"ok": True}}, headers=MERGE)
    assert status.json()["metadata"]["generation"] == 2
    assert status.json()["status"] == {"ok": True}


async def test_status_is_written_only_through_the_status_subresource(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await create_crd(client)
    created = await _kex(client, spec={"a": 1}, status={"ignored": True})
    assert "status" not in created
    main = await client.patch(
        f"{KEX}/k", json={"spec": {"a": 2}, "status": {"sneaky": True}}, headers=MERGE
    )
    assert main.status_code == 200
    assert "status" not in main.json()
    sub = await client.patch(
        f"{KEX}/k/status", json={"spec": {"a": 99}, "status": {"phase": "ok"}}, headers=MERGE
    )
    assert sub.status_code == 200
    stored = apiserver.get_object("kopfexamples", "k", "default")
    assert stored is not None
    assert stored["spec"] == {"a": 2}
    assert stored["status"] == {"phase": "ok"}


async def test_without_the_status_subresource_status_is_an_ordinary_field(
    client: httpx.AsyncClient,
) -> None:
    await create_crd(client, status=False)
    created = await _kex(client, spec={"a": 1}, status={"kept": True})
    assert created["status"] == {"kept": True}
    response = await client.patch(f"{KEX}/k/status", json={"status": {}}, headers=MERGE)
    assert response.status_code == 404


async def test_custom_resource_replace_needs_a_resource_version(client: httpx.AsyncClient) -> None:
    await create_crd(client)
    created = await _kex(client, spec={"a": 1})
    del created["metadata"]["resourceVersion"]
    response = await client.put(f"{KEX}/k", json=created)
    assert response.status_code == 422
    assert "must be specified for an update" in response.json()["message"]


async def test_configmap_replace_without_a_resource_version_is_unconditional(
    client: httpx.AsyncClient,
) -> None:
    await client.post(CM, json={"metadata": {"name": "c"}, "data": {"a": "1"}})
    response = await client.put(f"{CM}/c", json={"metadata": {"name": "c"}, "data": {"a": "2"}})
    assert response.status_code == 200
    assert response.json()["data"] == {"a": "2"}


async def test_a_no_op_write_keeps_the_version_and_sends_no_event(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post(CM, json={"metadata": {"name": "c"}, "data": {"a": "1"}})).json()
    version = created["metadata"]["resourceVersion"]
    async with open_watch(client, CM, resourceVersion=version) as events:
        same = await client.patch(f"{CM}/c", json={"data": {"a": "1"}}, headers=MERGE)
        assert same.json()["metadata"]["resourceVersion"] == version
        changed = await client.patch(f"{CM}/c", json={"data": {"a": "2"}}, headers=MERGE)
        event = await events.next()
    assert (
        event["object"]["metadata"]["resourceVersion"]
        == changed.json()["metadata"]["resourceVersion"]
    )


async def test_finalizers_hold_a_deleted_object_until_the_last_one_is_removed(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post(CM, json={"metadata": {"name": "f", "finalizers": ["a/x", "b/y"]}})
    async with open_watch(client, CM) as events:
        await events.next()
        deleted = await client.delete(f"{CM}/f")
        assert deleted.status_code == 200
        assert deleted.json()["metadata"]["deletionTimestamp"]
        marked = await events.next()
        assert marked["type"] == "MODIFIED"
        assert marked["object"]["metadata"]["deletionTimestamp"]
        # New finalizers cannot be added to an object being deleted.
        adding = await client.patch(
            f"{CM}/f", json={"metadata": {"finalizers": ["a/x", "b/y", "c/z"]}}, headers=MERGE
        )
        assert adding.status_code == 422
        one = await client.patch(
            f"{CM}/f", json={"metadata": {"finalizers": ["b/y"]}}, headers=MERGE
        )
        assert one.status_code == 200
        assert (await events.next())["type"] == "MODIFIED"
        assert apiserver.get_object("configmaps", "f", "default") is not None
        last = await client.patch(f"{CM}/f", json={"metadata": {"finalizers": []}}, headers=MERGE)
        assert last.status_code == 200
        gone = await events.next()
    assert gone["type"] == "DELETED"
    assert apiserver.get_object("configmaps", "f", "default") is None


async def test_dry_run_changes_nothing(client: httpx.AsyncClient, apiserver: ApiServer) -> None:
    params = {"dryRun": "All"}
    created = await client.post(
        CM, params=params, json={"metadata": {"name": "d"}, "data": {"a": "1"}}
    )
    assert created.status_code == 201
    assert created.json()["data"] == {"a": "1"}
    assert apiserver.get_object("configmaps", "d", "default") is None
    await client.post(CM, json={"metadata": {"name": "d"}, "data": {"a": "1"}})
    before = apiserver.get_object("configmaps", "d", "default")
    patched = await client.patch(f"{CM}/d", params=params, json={"data": {"a": "2"}}, headers=MERGE)
    assert patched.json()["data"] == {"a": "2"}
    assert (await client.delete(f"{CM}/d", params=params)).status_code == 200
    assert apiserver.get_object("configmaps", "d", "default") == before
    bad = await client.post(CM, params={"dryRun": "Some"}, json={"metadata": {"name": "e"}})
    assert bad.status_code == 400


async def test_field_manager_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CM, params={"fieldManager": "trikopf"}, json={"metadata": {"name": "fm"}}
    )
    assert response.status_code == 201


async def test_secret_string_data_is_stored_as_base64_data(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/namespaces/default/secrets",
        json={"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}},
    )
    body = response.json()
    assert "stringData" not in body
    assert base64.b64decode(body["data"]["password"]) == b"hunter2"
    assert body["type"] == "Opaque"


async def test_namespace_in_body_must_match_the_url(client: httpx.AsyncClient) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    response = await client.post(CM, json={"metadata": {"name": "x", "namespace": "other"}})
    assert response.status_code == 400
    assert "does not match the namespace" in response.json()["message"]


async def test_name_in_body_must_match_the_url_on_replace(client: httpx.AsyncClient) -> None:
    await client.post(CM, json={"metadata": {"name": "x"}})
    response = await client.put(f"{CM}/x", json={"metadata": {"name": "y"}})
    assert response.status_code == 400


async def test_uid_and_creation_timestamp_cannot_be_changed(client: httpx.AsyncClient) -> None:
    created = (await client.post(CM, json={"metadata": {"name": "x"}})).json()
    patched = await client.patch(
        f"{CM}/x", json={"metadata": {"creationTimestamp": "2000-01-01T00:00:00Z"}}, headers=MERGE
    )
    assert (
        patched.json()["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    )
    conflict = await client.patch(f"{CM}/x", json={"metadata": {"uid": "other"}}, headers=MERGE)
    assert conflict.status_code == 409


async def test_resource_version_in_a_patch_is_a_precondition(client: httpx.AsyncClient) -> None:
    await client.post(CM, json={"metadata": {"name": "x"}})
    response = await client.patch(
        f"{CM}/x", json={"metadata": {"resourceVersion": "1"}, "data": {"a": "b"}}, headers=MERGE
    )
    assert response.status_code == 409
    assert response.json()["reason"] == "Conflict"


async def test_default_namespaces_exist_and_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    names = [
        n["metadata"]["name"] for n in (await client.get("/api/v1/namespaces")).json()["items"]
    ]
    assert names == ["default", "kube-public", "kube-system"]
    response = await client.delete("/api/v1/namespaces/default")
    assert response.status_code == 403
    assert response.json()["reason"] == "Forbidden"


async def test_new_namespace_is_active_with_the_kubernetes_finalizer(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.post("/api/v1/namespaces", json={"metadata": {"name": "n1"}})).json()
    assert body["status"] == {"phase": "Active"}
    assert body["spec"] == {"finalizers": ["kubernetes"]}
    bad = await client.post("/api/v1/namespaces", json={"metadata": {"name": "has.dot"}})
    assert bad.status_code == 422


async def test_server_side_apply_creates_then_merges_other_managers_fields(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apply = {"Content-Type": "application/apply-patch+yaml"}
    manifest = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    missing_manager = await client.patch(f"{CM}/ssa", content=manifest, headers=apply)
    assert missing_manager.status_code == 400
    created = await client.patch(
        f"{CM}/ssa", content=manifest, headers=apply, params={"fieldManager": "test"}
    )
    assert created.status_code == 201
    assert created.json()["data"] == {"a": "1"}
    other = await client.patch(
        f"{CM}/ssa",
        content=manifest.replace(b"a: '1'", b"b: '2'"),
        headers=apply,
        params={"fieldManager": "other"},
    )
    assert other.status_code == 200
    stored = apiserver.get_object("configmaps", "ssa", "default")
    assert stored is not None
    assert stored["data"] == {"a": "1", "b": "2"}
    # The first manager applies b instead of a: a, which only it owned, goes.
    again = await client.patch(
        f"{CM}/ssa",
        content=manifest.replace(b"a: '1'", b"b: '2'"),
        headers=apply,
        params={"fieldManager": "test"},
    )
    assert again.status_code == 200
    assert again.json()["data"] == {"b": "2"}
