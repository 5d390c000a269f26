"""Watch semantics over raw HTTP: start points, resumption, bookmarks, 410, selectors, timeouts."""

from __future__ import annotations

import anyio
import httpx

from tests.apiserver.crds import create_crd
from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer, open_apiserver

CM = "/api/v1/namespaces/default/configmaps"


async def _create(
    client: httpx.AsyncClient, name: str, namespace: str = "default", **labels: str
) -> dict:
    response = await client.post(
        f"/api/v1/namespaces/{namespace}/configmaps",
        json={"metadata": {"name": name, "labels": labels}},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _patch(client: httpx.AsyncClient, name: str, patch: dict) -> dict:
    response = await client.patch(
        f"{CM}/{name}", json=patch, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_watch_without_version_lists_existing_objects_as_added_then_streams(
    client: httpx.AsyncClient,
) -> None:
    await _create(client, "a")
    await _create(client, "b")
    async with open_watch(client, CM) as events:
        initial = await events.take(2)
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in initial] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
        ]
        await _patch(client, "a", {"data": {"x": "1"}})
        event = await events.next()
        assert event["type"] == "MODIFIED"
        assert event["object"]["data"] == {"x": "1"}
        assert event["object"]["kind"] == "ConfigMap"


async def test_watch_from_version_zero_also_starts_with_the_current_state(
    client: httpx.AsyncClient,
) -> None:
    created = await _create(client, "a")
    async with open_watch(client, CM, resourceVersion="0") as events:
        event = await events.next()
        assert event["type"] == "ADDED"
        assert (
            event["object"]["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        )


async def test_watch_resumed_from_a_version_has_no_gap_and_no_duplicate(
    client: httpx.AsyncClient,
) -> None:
    await _create(client, "a")
    seen: list[int] = []
    async with open_watch(client, CM, resourceVersion="1") as events:
        first = await events.next()
        seen.append(int(first["object"]["metadata"]["resourceVersion"]))
        for i in range(3):
            await _patch(client, "a", {"data": {"i": str(i)}})
        for event in await events.take(3):
            seen.append(int(event["object"]["metadata"]["resourceVersion"]))
    resume_from = seen[1]
    for i in range(3, 5):
        await _patch(client, "a", {"data": {"i": str(i)}})
    async with open_watch(client, CM, resourceVersion=str(resume_from)) as events:
        resumed = [int(e["object"]["metadata"]["resourceVersion"]) for e in await events.take(4)]
    assert resumed[:2] == seen[2:]
    assert resumed == sorted(resumed)
    assert len(set(seen[:2] + resumed)) == 6
    data = (await client.get(f"{CM}/a")).json()
    assert resumed[-1] == int(data["metadata"]["resourceVersion"])


async def test_events_arrive_in_resource_version_order(client: httpx.AsyncClient) -> None:
    async with open_watch(client, CM, resourceVersion="1") as events:
        for i in range(20):
            await _create(client, f"o{i}")
        got = await events.take(20)
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in got]
    assert versions == sorted(versions)
    assert [e["object"]["metadata"]["name"] for e in got] == [f"o{i}" for i in range(20)]


async def test_namespaced_watch_sees_only_its_namespace_and_cluster_watch_sees_all(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v1/namespaces", json={"metadata": {"name": "other"}})
    async with (
        open_watch(client, CM, resourceVersion="1") as ns_events,
        open_watch(client, "/api/v1/configmaps", resourceVersion="1") as all_events,
    ):
        await _create(client, "x", namespace="other")
        await _create(client, "y", namespace="default")
        everywhere = await all_events.take(2)
        here = await ns_events.next()
    assert [e["object"]["metadata"]["namespace"] for e in everywhere] == ["other", "default"]
    assert here["object"]["metadata"]["name"] == "y"


async def test_deleted_event_carries_the_last_state(client: httpx.AsyncClient) -> None:
    await _create(client, "gone")
    async with open_watch(client, CM, resourceVersion="1") as events:
        await events.next()
        response = await client.delete(f"{CM}/gone")
        assert response.status_code == 200
        event = await events.next()
    assert event["type"] == "DELETED"
    assert event["object"]["metadata"]["name"] == "gone"


async def test_object_modified_out_of_the_label_selection_arrives_as_deleted(
    client: httpx.AsyncClient,
) -> None:
    await _create(client, "a", app="yes")
    await _create(client, "b", app="no")
    async with open_watch(client, CM, labelSelector="app=yes") as events:
        first = await events.next()
        assert first["object"]["metadata"]["name"] == "a"
        await _patch(client, "a", {"metadata": {"labels": {"app": "no"}}})
        left = await events.next()
        assert (left["type"], left["object"]["metadata"]["name"]) == ("DELETED", "a")
        assert left["object"]["metadata"]["labels"] == {"app": "no"}
        await _patch(client, "b", {"metadata": {"labels": {"app": "yes"}}})
        joined = await events.next()
        assert (joined["type"], joined["object"]["metadata"]["name"]) == ("ADDED", "b")


async def test_field_selector_on_name_watches_one_object(client: httpx.AsyncClient) -> None:
    await _create(client, "a")
    await _create(client, "b")
    async with open_watch(
        client, CM, fieldSelector="metadata.name=b", resourceVersion="1"
    ) as events:
        await _patch(client, "a", {"data": {"k": "1"}})
        await _patch(client, "b", {"data": {"k": "2"}})
        got = await events.take(2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [
        ("ADDED", "b"),
        ("MODIFIED", "b"),
    ]


async def test_watch_with_timeout_seconds_ends_the_stream(client: httpx.AsyncClient) -> None:
    await _create(client, "a")
    started = anyio.current_time()
    async with open_watch(client, CM, timeoutSeconds="1") as events:
        rest = await events.rest(timeout=5)
    assert [e["type"] for e in rest] == ["ADDED"]
    assert anyio.current_time() - started >= 1.0


async def test_bookmarks_arrive_on_idle_watches_that_ask_for_them() -> None:
    async with (
        open_apiserver(bookmark_interval=0.1) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        created = await _create(client, "a")
        async with open_watch(client, CM, allowWatchBookmarks="true") as events:
            added = await events.next()
            assert added["type"] == "ADDED"
            bookmark = await events.next(timeout=5)
            assert bookmark["type"] == "BOOKMARK"
            assert bookmark["object"]["kind"] == "ConfigMap"
            assert bookmark["object"]["apiVersion"] == "v1"
            version = int(bookmark["object"]["metadata"]["resourceVersion"])
            assert version >= int(created["metadata"]["resourceVersion"])
        # Without allowWatchBookmarks there are none: the first line is the next event.
        async with open_watch(client, CM, resourceVersion=str(version)) as events:
            with anyio.move_on_after(0.5):
                await events.next(timeout=1)
                raise AssertionError("an event arrived on a watch that asked for none")


async def test_watch_from_a_compacted_version_gets_a_410_error_event() -> None:
    async with (
        open_apiserver(history_window=4) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        first = await _create(client, "a")
        for i in range(40):
            await _patch(client, "a", {"data": {"i": str(i)}})
        async with open_watch(
            client, CM, resourceVersion=first["metadata"]["resourceVersion"]
        ) as events:
            rest = await events.rest()
    assert len(rest) == 1
    assert rest[0]["type"] == "ERROR"
    status = rest[0]["object"]
    assert status["kind"] == "Status"
    assert status["code"] == 410
    assert status["reason"] == "Expired"
    assert "too old resource version" in status["message"]


async def test_send_initial_events_ends_with_a_marked_bookmark(client: httpx.AsyncClient) -> None:
    await _create(client, "a")
    async with open_watch(
        client,
        CM,
        sendInitialEvents="true",
        allowWatchBookmarks="true",
        resourceVersionMatch="NotOlderThan",
    ) as events:
        added, bookmark = await events.take(2)
    assert added["type"] == "ADDED"
    assert bookmark["type"] == "BOOKMARK"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_of_a_named_object_on_the_legacy_watch_path(client: httpx.AsyncClient) -> None:
    await _create(client, "a")
    await _create(client, "b")
    async with open_watch(client, "/api/v1/watch/namespaces/default/configmaps/b") as events:
        first = await events.next()
        await _patch(client, "a", {"data": {"k": "v"}})
        await _patch(client, "b", {"data": {"k": "v"}})
        second = await events.next()
    assert first["object"]["metadata"]["name"] == "b"
    assert (second["type"], second["object"]["metadata"]["name"]) == ("MODIFIED", "b")


async def test_many_watchers_receive_the_same_events(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    async with (
        open_watch(client, CM, resourceVersion="1") as one,
        open_watch(client, CM, resourceVersion="1") as two,
    ):
        await _create(client, "shared")
        a, b = await one.next(), await two.next()
    assert a == b
    assert apiserver.get_object("configmaps", "shared", "default") == a["object"]


async def test_a_watcher_that_falls_behind_the_history_gets_410() -> None:
    async with (
        open_apiserver(history_window=4) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        await _create(client, "a")
        async with open_watch(client, CM) as events:
            await events.next()
            server.faults.stall_watches()
            for i in range(40):
                await _patch(client, "a", {"data": {"i": str(i)}})
            server.faults.unstall_watches()
            rest = await events.rest()
    assert [e["type"] for e in rest] == ["ERROR"]
    assert rest[0]["object"]["code"] == 410


async def test_bookmarks_stop_at_the_timeout() -> None:
    async with (
        open_apiserver(bookmark_interval=0.2) as server,
        httpx.AsyncClient(base_url=server.url) as client,
        open_watch(client, CM, allowWatchBookmarks="1", timeoutSeconds="1") as events,
    ):
        rest = await events.rest()
    assert rest, "no bookmark arrived within a second"
    assert {e["type"] for e in rest} == {"BOOKMARK"}
    assert len(rest) <= 5


async def test_watch_versions_follow_the_requested_api_version(client: httpx.AsyncClient) -> None:
    await create_crd(client, versions=("v1", "v1beta1"))
    path = "/apis/kopf.dev/v1beta1/namespaces/default/kopfexamples"
    async with open_watch(client, path, resourceVersion="1") as events:
        await client.post(
            "/apis/kopf.dev/v1/namespaces/default/kopfexamples",
            json={"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "x"}},
        )
        event = await events.next()
    assert event["object"]["apiVersion"] == "kopf.dev/v1beta1"


async def test_bookmarks_keep_coming_while_events_flow() -> None:
    async with (
        open_apiserver(bookmark_interval=0.2) as server,
        httpx.AsyncClient(base_url=server.url) as client,
        open_watch(client, CM, resourceVersion="1", allowWatchBookmarks="true") as events,
    ):
        seen: list[str] = []
        with anyio.fail_after(10):
            i = 0
            while "BOOKMARK" not in seen:
                await _create(client, f"o{i}")
                i += 1
                event = await events.next()
                seen.append(event["type"])
                if event["type"] == "BOOKMARK":
                    break
                assert event["type"] == "ADDED"
    assert seen[-1] == "BOOKMARK"


async def test_watch_from_a_future_version_is_refused_so_the_client_relists(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    future = apiserver.store.rv + 1000
    response = await client.get(CM, params={"watch": "1", "resourceVersion": str(future)})
    assert response.status_code == 504
    status = response.json()
    assert status["reason"] == "Timeout"
    assert status["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
