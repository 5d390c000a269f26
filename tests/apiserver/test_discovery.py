"""Discovery as kubectl reads it, and CRDs appearing in (and leaving) it."""

from __future__ import annotations

import httpx

from tests.apiserver.crds import CRDS, create_crd

AGGREGATED = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
    "application/json"
)


async def test_version_reports_a_kubernetes_version(client: httpx.AsyncClient) -> None:
    body = (await client.get("/version")).json()
    assert body["major"] == "1"
    assert int(body["minor"]) >= 27
    assert body["gitVersion"].startswith("v1.")


async def test_core_api_lists_v1_and_the_server_address(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api")).json()
    assert body["kind"] == "APIVersions"
    assert body["versions"] == ["v1"]
    assert body["serverAddressByClientCIDRs"][0]["serverAddress"].startswith("127.0.0.1:")


async def test_core_resources_are_complete(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1")).json()
    assert body["kind"] == "APIResourceList"
    assert body["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in body["resources"]}
    for name in (
        "namespaces",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "services",
        "pods",
        "events",
    ):
        assert name in by_name
    pods = by_name["pods"]
    assert pods["kind"] == "Pod"
    assert pods["namespaced"] is True
    assert pods["shortNames"] == ["po"]
    assert pods["categories"] == ["all"]
    assert set(pods["verbs"]) >= {"create", "delete", "get", "list", "patch", "update", "watch"}
    assert by_name["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert by_name["namespaces"]["namespaced"] is False
    assert "deletecollection" not in by_name["namespaces"]["verbs"]


async def test_groups_list_every_built_in_group(client: httpx.AsyncClient) -> None:
    body = (await client.get("/apis")).json()
    assert body["kind"] == "APIGroupList"
    names = [g["name"] for g in body["groups"]]
    for group in (
        "apps",
        "events.k8s.io",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
    ):
        assert group in names
    apps = (await client.get("/apis/apps")).json()
    assert apps["kind"] == "APIGroup"
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    deployments = (await client.get("/apis/apps/v1")).json()
    assert deployments["groupVersion"] == "apps/v1"
    assert {"deployments", "deployments/status", "replicasets"} <= {
        r["name"] for r in deployments["resources"]
    }


async def test_aggregated_discovery_lists_every_group_version_and_resource(
    client: httpx.AsyncClient,
) -> None:
    await create_crd(client)
    response = await client.get("/apis", headers={"Accept": AGGREGATED})
    assert response.headers["content-type"] == (
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    )
    body = response.json()
    assert body["kind"] == "APIGroupDiscoveryList"
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2"
    groups = {item["metadata"]["name"]: item for item in body["items"]}
    kopf = groups["kopf.dev"]["versions"][0]
    assert kopf["version"] == "v1"
    assert kopf["freshness"] == "Current"
    (resource,) = kopf["resources"]
    assert resource["resource"] == "kopfexamples"
    assert resource["responseKind"] == {"group": "kopf.dev", "version": "v1", "kind": "KopfExample"}
    assert resource["scope"] == "Namespaced"
    assert resource["shortNames"] == ["kex", "kexs"]
    assert [s["subresource"] for s in resource["subresources"]] == ["status"]
    deployments = next(
        r for r in groups["apps"]["versions"][0]["resources"] if r["resource"] == "deployments"
    )
    scale = next(s for s in deployments["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    core = (await client.get("/api", headers={"Accept": AGGREGATED})).json()
    assert [item["metadata"]["name"] for item in core["items"]] == [""]
    assert "pods" in {r["resource"] for r in core["items"][0]["versions"][0]["resources"]}


async def test_aggregated_discovery_v2beta1_is_served_when_asked_first(
    client: httpx.AsyncClient,
) -> None:
    accept = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    response = await client.get("/apis", headers={"Accept": accept})
    assert response.json()["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


async def test_plain_json_discovery_requests_get_the_legacy_documents(
    client: httpx.AsyncClient,
) -> None:
    for path, kind in (("/api", "APIVersions"), ("/apis", "APIGroupList")):
        response = await client.get(path, headers={"Accept": "application/json"})
        assert response.headers["content-type"] == "application/json"
        assert response.json()["kind"] == kind


async def test_unknown_groups_and_resources_are_404(client: httpx.AsyncClient) -> None:
    for path in ("/apis/nope.example.com", "/apis/apps/v9", "/api/v1/widgets", "/api/v2"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["reason"] == "NotFound"


async def test_a_crd_registers_each_served_version_in_discovery(client: httpx.AsyncClient) -> None:
    crd = await create_crd(client, versions=("v1", "v1beta1"))
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "KopfExample"
    assert crd["status"]["storedVersions"] == ["v1"]
    group = (await client.get("/apis/kopf.dev")).json()
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    for version in ("v1", "v1beta1"):
        body = (await client.get(f"/apis/kopf.dev/{version}")).json()
        by_name = {r["name"]: r for r in body["resources"]}
        resource = by_name["kopfexamples"]
        assert resource["kind"] == "KopfExample"
        assert resource["singularName"] == "kopfexample"
        assert resource["shortNames"] == ["kex", "kexs"]
        assert resource["categories"] == ["all"]
        assert resource["namespaced"] is True
        assert "kopfexamples/status" in by_name
    # Objects written in one version are read in the other with that apiVersion.
    await client.post(
        "/apis/kopf.dev/v1/namespaces/default/kopfexamples",
        json={"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "x"}},
    )
    other = (await client.get("/apis/kopf.dev/v1beta1/namespaces/default/kopfexamples/x")).json()
    assert other["apiVersion"] == "kopf.dev/v1beta1"
    listed = (await client.get("/apis/kopf.dev/v1beta1/namespaces/default/kopfexamples")).json()
    assert listed["apiVersion"] == "kopf.dev/v1beta1"
    assert [i["apiVersion"] for i in listed["items"]] == ["kopf.dev/v1beta1"]
    stored = (await client.get("/apis/kopf.dev/v1/namespaces/default/kopfexamples")).json()
    assert [i["apiVersion"] for i in stored["items"]] == ["kopf.dev/v1"]


async def test_cluster_scoped_crd_objects_live_outside_namespaces(
    client: httpx.AsyncClient,
) -> None:
    await create_crd(client, scope="Cluster")
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "c"}}
    created = await client.post("/apis/kopf.dev/v1/kopfexamples", json=body)
    assert created.status_code == 201
    assert "namespace" not in created.json()["metadata"]
    nested = await client.get("/apis/kopf.dev/v1/namespaces/default/kopfexamples")
    assert nested.status_code == 404


async def test_invalid_crds_are_rejected_with_causes(client: httpx.AsyncClient) -> None:
    response = await client.post(
        CRDS,
        json={
            "metadata": {"name": "wrong.kopf.dev"},
            "spec": {
                "group": "kopf.dev",
                "scope": "Sideways",
                "names": {"plural": "things", "kind": "Thing"},
                "versions": [{"name": "v1", "served": True, "storage": False}],
            },
        },
    )
    assert response.status_code == 422
    fields = {c["field"] for c in response.json()["details"]["causes"]}
    assert {"spec.scope", "spec.versions", "metadata.name"} <= fields
    assert (await client.get("/apis/kopf.dev/v1")).status_code == 404
