"""Server-side apply and field ownership (``metadata.managedFields``) over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml

from tests.apiserver.crds import CRDS
from trikopf.apiserver import ApiServer, managedfields
from trikopf.apiserver import apply as ssa
from trikopf.client import ApiClient, Conflict, ConnectionInfo, open_client

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}


async def apply(
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
    expect: int = 200,
    **params: str,
) -> dict[str, Any]:
    query = {"fieldManager": manager, **params}
    if force:
        query["force"] = "true"
    response = await client.patch(path, content=yaml.safe_dump(body), headers=APPLY, params=query)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def configmap(name: str = "cm", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The managedFields entries by (manager, operation)."""
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def fields(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    fields_v1: dict[str, Any] = entries(obj)[(manager, operation)]["fieldsV1"]
    return fields_v1


async def test_apply_records_exactly_the_applied_fields_for_its_manager(
    client: httpx.AsyncClient,
) -> None:
    body = configmap(a="1", b="2")
    body["metadata"]["labels"] = {"app": "x"}
    created = await apply(client, f"{CONFIGMAPS}/cm", body, "alice", expect=201)
    (entry,) = created["metadata"]["managedFields"]
    assert entry["manager"] == "alice"
    assert entry["operation"] == "Apply"
    assert entry["apiVersion"] == "v1"
    assert entry["fieldsType"] == "FieldsV1"
    assert entry["time"].endswith("Z")
    assert entry["fieldsV1"] == {
        "f:data": {"f:a": {}, "f:b": {}},
        "f:metadata": {"f:labels": {"f:app": {}}},
    }
    read = (await client.get(f"{CONFIGMAPS}/cm")).json()
    assert read["metadata"]["managedFields"] == created["metadata"]["managedFields"]


async def test_create_and_patch_record_update_entries_by_field_manager_or_user_agent(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        CONFIGMAPS, json=configmap(x="1"), params={"fieldManager": "creator"}
    )
    assert response.status_code == 201
    assert fields(response.json(), "creator", "Update") == {"f:data": {".": {}, "f:x": {}}}
    response = await client.patch(
        f"{CONFIGMAPS}/cm",
        json={"metadata": {"labels": {"team": "a"}}, "data": {"x": "2"}},
        headers={**MERGE, "User-Agent": "my-tool/1.2 (linux)"},
    )
    assert response.status_code == 200
    patched = response.json()
    # The patcher changed data.x: it owns it now, and the creator no longer does.
    assert fields(patched, "my-tool", "Update") == {
        "f:data": {"f:x": {}},
        "f:metadata": {"f:labels": {".": {}, "f:team": {}}},
    }
    assert ("creator", "Update") in entries(patched)
    assert fields(patched, "creator", "Update") == {"f:data": {}}  # the map node alone


async def test_apply_of_a_field_another_manager_set_differently_conflicts(
    client: httpx.AsyncClient,
) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1", b="2"), "alice", expect=201)
    response = await client.patch(
        f"{CONFIGMAPS}/cm",
        content=yaml.safe_dump(configmap(a="9", b="8")),
        headers=APPLY,
        params={"fieldManager": "bob"},
    )
    assert response.status_code == 409
    status = response.json()
    assert status["reason"] == "Conflict"
    assert status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n- .data.a\n- .data.b'
    )
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.a"},
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.b"},
    ]
    unchanged = (await client.get(f"{CONFIGMAPS}/cm")).json()
    assert unchanged["data"] == {"a": "1", "b": "2"}


async def test_conflict_with_an_updater_names_its_api_version(client: httpx.AsyncClient) -> None:
    await client.post(CONFIGMAPS, json=configmap(a="1"), params={"fieldManager": "editor"})
    status = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="2"), "alice", expect=409)
    assert status["message"] == (
        'Apply failed with 1 conflict: conflict with "editor" using v1: .data.a'
    )


async def test_applying_the_same_value_shares_the_field_and_forcing_takes_it(
    client: httpx.AsyncClient,
) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1", b="2"), "alice", expect=201)
    shared = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "bob")
    assert fields(shared, "bob") == {"f:data": {"f:a": {}}}
    assert fields(shared, "alice") == {"f:data": {"f:a": {}, "f:b": {}}}
    forced = await apply(client, f"{CONFIGMAPS}/cm", configmap(b="3"), "bob", force=True)
    assert forced["data"] == {"a": "1", "b": "3"}
    assert fields(forced, "bob") == {"f:data": {"f:b": {}}}
    assert fields(forced, "alice") == {"f:data": {"f:a": {}}}


async def test_a_field_dropped_from_the_applied_config_is_removed_unless_co_owned(
    client: httpx.AsyncClient,
) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1", b="2", c="3"), "alice", expect=201)
    await apply(client, f"{CONFIGMAPS}/cm", configmap(b="2"), "bob")
    result = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice")
    # c belonged to alice alone: gone; b is still applied by bob: kept.
    assert result["data"] == {"a": "1", "b": "2"}
    assert fields(result, "alice") == {"f:data": {"f:a": {}}}
    assert fields(result, "bob") == {"f:data": {"f:b": {}}}


async def test_a_noop_apply_writes_nothing(client: httpx.AsyncClient) -> None:
    first = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice", expect=201)
    again = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice")
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert again["metadata"]["managedFields"] == first["metadata"]["managedFields"]


async def test_dry_run_apply_stores_nothing(client: httpx.AsyncClient) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice", expect=201)
    dry = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="2"), "bob", force=True, dryRun="All")
    assert dry["data"] == {"a": "2"}
    stored = (await client.get(f"{CONFIGMAPS}/cm")).json()
    assert stored["data"] == {"a": "1"}
    assert set(entries(stored)) == {("alice", "Apply")}


async def test_apply_without_a_field_manager_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        f"{CONFIGMAPS}/cm", content=yaml.safe_dump(configmap(a="1")), headers=APPLY
    )
    assert response.status_code == 400
    assert "fieldManager" in response.json()["message"]


async def test_managed_fields_are_cleared_by_a_single_empty_entry_not_by_an_empty_list(
    client: httpx.AsyncClient,
) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice", expect=201)
    kept = await client.patch(
        f"{CONFIGMAPS}/cm", json={"metadata": {"managedFields": []}}, headers=MERGE
    )
    assert set(entries(kept.json())) == {("alice", "Apply")}
    cleared = await client.patch(
        f"{CONFIGMAPS}/cm", json={"metadata": {"managedFields": [{}]}}, headers=MERGE
    )
    assert cleared.status_code == 200
    assert "managedFields" not in cleared.json()["metadata"]
    stored = (await client.get(f"{CONFIGMAPS}/cm")).json()
    assert "managedFields" not in stored["metadata"]
    # Updates of an object without ownership are not tracked, as in Kubernetes.
    untracked = await client.patch(f"{CONFIGMAPS}/cm", json={"data": {"b": "2"}}, headers=MERGE)
    assert "managedFields" not in untracked.json()["metadata"]
    # The first apply hands what is there to "before-first-apply", which then conflicts.
    status = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="5"), "bob", expect=409)
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "before-first-apply" using v1',
            "field": ".data.a",
        }
    ]
    taken = await apply(client, f"{CONFIGMAPS}/cm", configmap(a="5"), "bob", force=True)
    assert taken["data"] == {"a": "5", "b": "2"}
    assert fields(taken, "before-first-apply", "Update") == {"f:data": {".": {}, "f:b": {}}}
    assert fields(taken, "bob") == {"f:data": {"f:a": {}}}


def deployment(*containers: dict[str, Any], replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": list(containers)},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": spec,
    }


async def test_containers_are_owned_item_by_item_by_their_names(
    client: httpx.AsyncClient,
) -> None:
    path = f"{DEPLOYMENTS}/web"
    app = {"name": "app", "image": "app:1"}
    side = {"name": "side", "image": "side:1"}
    await apply(client, path, deployment(app, replicas=2), "alice", expect=201)
    both = await apply(client, path, deployment(side), "bob")
    assert [c["name"] for c in both["spec"]["template"]["spec"]["containers"]] == ["app", "side"]
    containers = fields(both, "bob")["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"side"}': {".": {}, "f:image": {}, "f:name": {}}}
    conflict = await apply(
        client, path, deployment({"name": "app", "image": "app:2"}), "bob", expect=409
    )
    assert conflict["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "alice"',
            "field": '.spec.template.spec.containers[name="app"].image',
        }
    ]
    # Bob stops applying his container: it goes; alice's stays with its replicas.
    dropped = await apply(client, path, deployment(app), "bob")
    names = [c["name"] for c in dropped["spec"]["template"]["spec"]["containers"]]
    assert names == ["app"]
    assert dropped["spec"]["replicas"] == 2


async def test_finalizers_are_owned_as_a_set(client: httpx.AsyncClient) -> None:
    body = configmap(a="1")
    body["metadata"]["finalizers"] = ["x.example.com/a"]
    await apply(client, f"{CONFIGMAPS}/cm", body, "alice", expect=201)
    body["metadata"]["finalizers"] = ["x.example.com/b"]
    del body["data"]
    both = await apply(client, f"{CONFIGMAPS}/cm", body, "bob")
    assert both["metadata"]["finalizers"] == ["x.example.com/a", "x.example.com/b"]
    assert fields(both, "bob") == {"f:metadata": {"f:finalizers": {'v:"x.example.com/b"': {}}}}


def widgets_crd() -> dict[str, Any]:
    entry = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "entries": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["name"],
                                            "items": entry,
                                        },
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }


def widget(*entries: dict[str, Any], tags: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"entries": list(entries)}
    if tags is not None:
        spec["tags"] = tags
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": spec,
    }


WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


async def test_a_crd_map_list_is_merged_and_owned_by_its_keys(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(CRDS, json=widgets_crd())).status_code == 201
    path = f"{WIDGETS}/w"
    await apply(client, path, widget({"name": "a", "port": 1}, tags=["x"]), "alice", expect=201)
    merged = await apply(client, path, widget({"name": "b", "port": 2}), "bob")
    assert merged["spec"]["entries"] == [{"name": "a", "port": 1}, {"name": "b", "port": 2}]
    assert fields(merged, "bob") == {
        "f:spec": {"f:entries": {'k:{"name":"b"}': {".": {}, "f:name": {}, "f:port": {}}}}
    }
    # An atomic list belongs to its applier as a whole.
    assert fields(merged, "alice")["f:spec"]["f:tags"] == {}
    conflict = await apply(client, path, widget(tags=["y"]), "bob", expect=409)
    assert conflict["details"]["causes"][0]["field"] == ".spec.tags"
    pruned = await apply(client, path, widget(), "bob")
    assert pruned["spec"]["entries"] == [{"name": "a", "port": 1}]


async def test_status_writes_record_the_status_subresource(client: httpx.AsyncClient) -> None:
    assert (await client.post(CRDS, json=widgets_crd())).status_code == 201
    await apply(client, f"{WIDGETS}/w", widget({"name": "a"}), "alice", expect=201)
    response = await client.patch(
        f"{WIDGETS}/w/status",
        json={"status": {"phase": "Ready"}},
        headers=MERGE,
        params={"fieldManager": "reporter"},
    )
    assert response.status_code == 200
    entry = entries(response.json())[("reporter", "Update")]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:phase": {}}}
    # The main resource's applier owns nothing of the status.
    assert "f:status" not in fields(response.json(), "alice")
    applied = await apply(
        client, f"{WIDGETS}/w/status", {**widget(), "status": {"phase": "Done"}}, "s", force=True
    )
    status_entry = entries(applied)[("s", "Apply")]
    assert status_entry["subresource"] == "status"
    assert status_entry["fieldsV1"] == {"f:status": {"f:phase": {}}}
    assert applied["status"] == {"phase": "Done"}


@pytest.fixture
async def api(connection: ConnectionInfo) -> AsyncIterator[ApiClient]:
    async with open_client(connection) as client:
        yield client


async def test_trikopf_client_patches_are_owned_by_its_user_agent_and_lose_to_no_apply(
    api: ApiClient, apiserver: ApiServer
) -> None:
    configmaps = await api.resolve("configmaps")
    await api.create(configmaps, configmap(a="1"), namespace="default")
    patched = await api.patch(configmaps, "cm", {"data": {"b": "2"}}, namespace="default")
    assert set(entries(dict(patched))) == {("trikopf", "Update")}
    assert fields(dict(patched), "trikopf", "Update") == {"f:data": {".": {}, "f:a": {}, "f:b": {}}}
    with pytest.raises(Conflict) as excinfo:
        await api.patch(
            configmaps,
            "cm",
            configmap(b="3"),
            namespace="default",
            patch_type="apply",
            field_manager="other",
        )
    assert excinfo.value.code == 409
    stored = apiserver.get_object("configmaps", "cm", "default")
    assert stored is not None
    assert stored["data"] == {"a": "1", "b": "2"}
    assert json.dumps(stored["metadata"]["managedFields"])  # stored as plain JSON


def test_an_atomic_map_is_owned_and_replaced_as_a_whole() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "selector": {
                        "type": "object",
                        "x-kubernetes-map-type": "atomic",
                        "additionalProperties": {"type": "string"},
                    },
                    "size": {"type": "integer"},
                },
            }
        },
    }
    config = {"spec": {"selector": {"a": "1"}, "size": 2}}
    owned = managedfields.field_set(config, schema, subresource=None, has_status=False)
    assert owned == {("f:spec", "f:selector"), ("f:spec", "f:size")}
    live = {"metadata": {"name": "x"}, "spec": {"selector": {"b": "2"}, "size": 1}}
    merged = ssa.merge_object(live, config, schema)
    assert merged["spec"] == {"selector": {"a": "1"}, "size": 2}
    touched, removed = managedfields.diff(live, merged, schema)
    assert touched == {("f:spec", "f:selector"), ("f:spec", "f:size")}
    assert removed == set()


async def test_force_is_refused_on_patches_that_are_not_apply(client: httpx.AsyncClient) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice", expect=201)
    response = await client.patch(
        f"{CONFIGMAPS}/cm", json={"data": {"a": "2"}}, headers=MERGE, params={"force": "true"}
    )
    assert response.status_code == 422
    assert response.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for'
        " non-apply patch"
    )


async def test_apply_refuses_a_name_that_is_not_the_urls(client: httpx.AsyncClient) -> None:
    message = "the name of the object (other) does not match the name on the URL (cm)"
    creating = await apply(client, f"{CONFIGMAPS}/cm", configmap("other"), "alice", expect=400)
    assert creating["message"] == message
    await apply(client, f"{CONFIGMAPS}/cm", configmap(), "alice", expect=201)
    updating = await apply(client, f"{CONFIGMAPS}/cm", configmap("other"), "alice", expect=400)
    assert updating["message"] == message


@pytest.mark.parametrize("metadata", ["x", [], 5], ids=["string", "list", "number"])
async def test_apply_refuses_metadata_that_is_not_an_object(
    client: httpx.AsyncClient, metadata: object
) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "1"}}
    creating = await apply(client, f"{CONFIGMAPS}/cm", body, "alice", expect=400)
    assert creating["message"] == "metadata must be an object"
    await apply(client, f"{CONFIGMAPS}/cm", configmap(), "alice", expect=201)
    updating = await apply(client, f"{CONFIGMAPS}/cm", body, "alice", expect=400)
    assert updating["message"] == "metadata must be an object"


async def test_apply_takes_null_metadata_as_none_given(client: httpx.AsyncClient) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": None, "data": {"a": "1"}}
    created = await apply(client, f"{CONFIGMAPS}/cm", body, "alice", expect=201)
    assert created["metadata"]["name"] == "cm"
    updated = await apply(client, f"{CONFIGMAPS}/cm", body, "alice")
    assert updated["data"] == {"a": "1"}


async def test_the_oldest_of_more_than_ten_updaters_are_folded_into_ancient_changes(
    client: httpx.AsyncClient,
) -> None:
    await apply(client, f"{CONFIGMAPS}/cm", configmap(a="1"), "alice", expect=201)
    for index in range(14):
        response = await client.patch(
            f"{CONFIGMAPS}/cm",
            json={"metadata": {"labels": {f"l{index:02}": "x"}}},
            headers=MERGE,
            params={"fieldManager": f"m{index:02}"},
        )
        assert response.status_code == 200
    managed = response.json()["metadata"]["managedFields"]
    updaters = [e["manager"] for e in managed if e["operation"] == "Update"]
    assert len(updaters) == 10
    assert "ancient-changes" in updaters
    assert updaters.count("ancient-changes") == 1
    assert {"m00", "m01", "m02", "m03", "m04"}.isdisjoint(updaters)
    ancient = fields(response.json(), "ancient-changes", "Update")
    folded = {f"f:l{index:02}" for index in range(5)}
    assert set(ancient["f:metadata"]["f:labels"]) >= folded
    assert ("alice", "Apply") in entries(response.json())


async def test_scale_writes_record_the_scale_subresource(client: httpx.AsyncClient) -> None:
    app = {"name": "app", "image": "app:1"}
    await apply(client, f"{DEPLOYMENTS}/web", deployment(app, replicas=1), "alice", expect=201)
    response = await client.patch(
        f"{DEPLOYMENTS}/web/scale",
        json={"spec": {"replicas": 4}},
        headers=MERGE,
        params={"fieldManager": "autoscaler"},
    )
    assert response.status_code == 200
    stored = (await client.get(f"{DEPLOYMENTS}/web")).json()
    entry = entries(stored)[("autoscaler", "Update")]
    assert entry["subresource"] == "scale"
    assert entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in fields(stored, "alice")["f:spec"]


async def test_service_ports_are_owned_by_port_and_protocol_with_tcp_by_default(
    client: httpx.AsyncClient,
) -> None:
    path = "/api/v1/namespaces/default/services/dns"

    def service(*ports: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dns"},
            "spec": {"ports": list(ports)},
        }

    udp = {"name": "dns", "port": 53, "protocol": "UDP"}
    await apply(client, path, service(udp), "alice", expect=201)
    # The same port number over TCP (the default protocol) is another item, not alice's.
    both = await apply(client, path, service({"name": "dns-tcp", "port": 53}), "bob")
    assert [(p["name"], p["protocol"]) for p in both["spec"]["ports"]] == [
        ("dns", "UDP"),
        ("dns-tcp", "TCP"),  # defaulted by the server, owned by nobody
    ]
    assert fields(both, "alice")["f:spec"]["f:ports"] == {
        'k:{"port":53,"protocol":"UDP"}': {".": {}, "f:name": {}, "f:port": {}, "f:protocol": {}}
    }
    assert fields(both, "bob")["f:spec"]["f:ports"] == {
        'k:{"port":53,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}}
    }
    # Naming the default explicitly is the same item: bob's, so alice conflicts on its name.
    conflict = await apply(
        client,
        path,
        service(udp, {"name": "x", "port": 53, "protocol": "TCP"}),
        "alice",
        expect=409,
    )
    assert [c["message"] for c in conflict["details"]["causes"]] == ['conflict with "bob"']
