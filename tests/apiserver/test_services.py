"""Services get a cluster IP and node ports from the server, as from a real service registry."""

from __future__ import annotations

import ipaddress
from typing import Any

import httpx
import pytest

from tests.apiserver.kubectl_support import Kubectl

SERVICES = "/api/v1/namespaces/default/services"


def service(name: str, **spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"port": 80}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": ports, **spec},
    }


async def create(client: httpx.AsyncClient, body: dict[str, Any], expect: int = 201) -> Any:
    response = await client.post(SERVICES, json=body)
    assert response.status_code == expect, response.text
    return response.json()


async def test_a_service_gets_a_free_cluster_ip_of_the_service_range(
    client: httpx.AsyncClient,
) -> None:
    first = await create(client, service("a"))
    second = await create(client, service("b"))
    ips = [s["spec"]["clusterIP"] for s in (first, second)]
    assert len(set(ips)) == 2
    for created, ip in zip((first, second), ips, strict=True):
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12")
        assert created["spec"]["clusterIPs"] == [ip]
        assert created["spec"]["ipFamilies"] == ["IPv4"]
        assert created["spec"]["ipFamilyPolicy"] == "SingleStack"
        assert created["status"] == {"loadBalancer": {}}
    read = (await client.get(f"{SERVICES}/a")).json()
    assert read["spec"]["clusterIP"] == ips[0]


async def test_headless_and_external_name_services_get_no_address(
    client: httpx.AsyncClient,
) -> None:
    headless = await create(client, service("h", clusterIP="None"))
    assert headless["spec"]["clusterIPs"] == ["None"]
    external = await create(client, service("e", type="ExternalName", externalName="x.example"))
    assert "clusterIP" not in external["spec"]


async def test_an_update_keeps_the_address_and_refuses_to_change_it(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, service("a", type="NodePort"))
    ip = created["spec"]["clusterIP"]
    node_port = created["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    # A replace that leaves the allocated values out keeps them (kubectl replace does this).
    body = service("a", type="NodePort", ports=[{"port": 80}, {"port": 81, "name": "x"}])
    body["spec"]["ports"][0]["name"] = "http"
    body["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    replaced = await client.put(f"{SERVICES}/a", json=body)
    assert replaced.status_code == 200, replaced.text
    spec = replaced.json()["spec"]
    assert spec["clusterIP"] == ip
    assert spec["ports"][0]["nodePort"] == node_port
    assert spec["ports"][1]["nodePort"] not in (node_port, None)
    moved = await client.patch(
        f"{SERVICES}/a",
        json={"spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert moved.status_code == 422
    assert "may not change once set" in moved.json()["message"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"clusterIP": "192.168.1.1"}, "is not in the valid range"),
        ({"clusterIP": "not-an-ip"}, "must be a valid IP address"),
        ({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}, "valid range"),
    ],
)
async def test_a_requested_address_or_port_outside_its_range_is_refused(
    client: httpx.AsyncClient, spec: dict[str, Any], message: str
) -> None:
    refused = await create(client, service("bad", **spec), expect=422)
    assert message in refused["message"]
    assert (await client.get(f"{SERVICES}/bad")).status_code == 404


async def test_an_address_or_node_port_in_use_is_refused(client: httpx.AsyncClient) -> None:
    taken = await create(client, service("a", type="NodePort"))
    ip, node_port = taken["spec"]["clusterIP"], taken["spec"]["ports"][0]["nodePort"]
    same_ip = await create(client, service("b", clusterIP=ip), expect=422)
    assert f"failed to allocate IP {ip}: provided IP is already allocated" in same_ip["message"]
    same_port = await create(
        client,
        service("c", type="NodePort", ports=[{"port": 80, "nodePort": node_port}]),
        expect=422,
    )
    assert (
        f"Invalid value: {node_port}: provided port is already allocated" in (same_port["message"])
    )
    # Once the first service is gone, its address is free again.
    assert (await client.delete(f"{SERVICES}/a")).status_code == 200
    await create(client, service("b", clusterIP=ip))


@pytest.mark.kubectl
async def test_kubectl_shows_the_allocated_address(kubectl: Kubectl) -> None:
    await kubectl.run("create", "service", "nodeport", "web", "--tcp=8080")
    shown = await kubectl.run("get", "service", "web")
    header, row = shown.stdout.splitlines()
    columns = row.split()
    assert header.split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    assert columns[1] == "NodePort"
    assert ipaddress.ip_address(columns[2]) in ipaddress.ip_network("10.96.0.0/12")
    assert columns[4].startswith("8080:3")
    assert columns[4].endswith("/TCP")
