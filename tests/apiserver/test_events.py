"""core/v1 and events.k8s.io/v1 Events: one collection, each change seen through both APIs."""

from __future__ import annotations

import httpx

from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer

CORE = "/api/v1/namespaces/default/events"
NEW = "/apis/events.k8s.io/v1/namespaces/default/events"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_a_core_event_is_seen_as_an_events_k8s_io_event(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    async with open_watch(client, NEW, resourceVersion=str(apiserver.store.rv)) as events:
        created = await client.post(
            CORE,
            json={
                "metadata": {"name": "e1"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "Started",
                "message": "it started",
                "type": "Normal",
                "count": 2,
                "source": {"component": "kubelet"},
                "reportingComponent": "kubelet",
            },
        )
        assert created.status_code == 201
        event = await events.next()
    core = created.json()
    new = event["object"]
    assert event["type"] == "ADDED"
    assert new["apiVersion"] == "events.k8s.io/v1"
    assert new["metadata"]["uid"] == core["metadata"]["uid"]
    assert new["metadata"]["resourceVersion"] == core["metadata"]["resourceVersion"]
    assert new["regarding"] == {"kind": "Pod", "name": "p", "namespace": "default"}
    assert new["note"] == "it started"
    assert new["deprecatedCount"] == 2
    assert new["deprecatedSource"] == {"component": "kubelet"}
    assert new["reportingController"] == "kubelet"
    selected = await client.get(NEW, params={"fieldSelector": "regarding.name=p"})
    assert [i["metadata"]["name"] for i in selected.json()["items"]] == ["e1"]


async def test_changes_through_either_api_show_in_both(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.post(
        NEW,
        json={
            "metadata": {"name": "e2"},
            "regarding": {"kind": "Node", "name": "n"},
            "note": "first",
            "reason": "Test",
            "type": "Warning",
            "reportingController": "me",
            "action": "Testing",
        },
    )
    core = (await client.get(f"{CORE}/e2")).json()
    assert core["message"] == "first"
    assert core["involvedObject"] == {"kind": "Node", "name": "n"}
    assert core["source"] == {"component": "me"}
    patched = await client.patch(f"{CORE}/e2", json={"message": "second"}, headers=MERGE)
    assert patched.status_code == 200
    new = (await client.get(f"{NEW}/e2")).json()
    assert new["note"] == "second"
    assert new["metadata"]["resourceVersion"] == patched.json()["metadata"]["resourceVersion"]
    duplicate = await client.post(CORE, json={"metadata": {"name": "e2"}})
    assert duplicate.status_code == 409
    assert (await client.delete(f"{NEW}/e2")).status_code == 200
    assert apiserver.get_object("events", "e2", "default") is None
    assert apiserver.objects("events.events.k8s.io", "default") == []
