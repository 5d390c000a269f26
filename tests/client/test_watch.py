"""The watch stream against the embedded API server: order, selectors, resumption, 410."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest

from tests.client.conftest import kex_body
from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, Gone
from trikopf.structs import Resource, WatchEvent


async def take(events: object, count: int) -> list[WatchEvent]:
    result: list[WatchEvent] = []
    async for event in events:  # type: ignore[attr-defined]
        if event.type == "BOOKMARK":
            continue
        result.append(event)
        if len(result) == count:
            break
    return result


async def test_watch_from_a_list_sees_every_change_in_order(
    client: ApiClient, kex: Resource
) -> None:
    await client.create(kex, kex_body("before"), namespace="default")
    listed = await client.list(kex, "default")
    async with client.watch(kex, "default", resource_version=listed.resource_version) as events:
        await client.create(kex, kex_body("a"), namespace="default")
        await client.patch(kex, "a", {"spec": {"size": 2}}, "default")
        await client.delete(kex, "a", "default")
        seen = await take(events, 3)
    assert [(e.type, e.name) for e in seen] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert seen[1].object["spec"] == {"size": 2}
    assert seen[0].namespace == "default"
    assert seen[0].uid == seen[2].uid
    versions = [int(e.resource_version or 0) for e in seen]
    assert versions == sorted(versions)
    assert events.resource_version == seen[-1].resource_version


async def test_watch_without_a_version_starts_with_existing_objects(
    client: ApiClient, kex: Resource
) -> None:
    await client.create(kex, kex_body("x"), namespace="default")
    async with client.watch(kex, "default") as events:
        (first,) = await take(events, 1)
    assert (first.type, first.name) == ("ADDED", "x")


async def test_watch_filters_by_label_selector(client: ApiClient, kex: Resource) -> None:
    listed = await client.list(kex)
    async with client.watch(
        kex, resource_version=listed.resource_version, label_selector="tier=web"
    ) as events:
        for name, tier in [("a", "db"), ("b", "web")]:
            body = kex_body(name)
            body["metadata"]["labels"]["tier"] = tier
            await client.create(kex, body, namespace="default")
        (event,) = await take(events, 1)
    assert event.name == "b"


async def test_a_dropped_watch_resumes_without_gap_or_duplicate(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    listed = await client.list(kex, "default")
    async with client.watch(kex, "default", resource_version=listed.resource_version) as events:
        for i in range(3):
            await client.create(kex, kex_body(f"o{i}"), namespace="default")
        first = await take(events, 3)
        apiserver.faults.drop_watches()
        for i in range(3, 6):
            await client.create(kex, kex_body(f"o{i}"), namespace="default")
        second = await take(events, 3)
        assert events.reconnects == 1
    names = [e.name for e in first + second]
    assert names == [f"o{i}" for i in range(6)]
    watches = [r for r in apiserver.requests if r.is_watch and "kopfexamples" in r.path]
    assert len(watches) == 2
    assert watches[1].query["resourceVersion"] == [first[-1].resource_version]


async def test_an_expired_resource_version_raises_gone(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    listed = await client.list(kex, "default")
    await client.create(kex, kex_body("a"), namespace="default")
    await client.create(kex, kex_body("b"), namespace="default")
    apiserver.faults.compact()
    with pytest.raises(Gone) as info:
        async with client.watch(kex, "default", resource_version=listed.resource_version) as ev:
            await take(ev, 1)
    assert info.value.code == 410


async def test_watch_ends_when_the_server_side_timeout_passes(
    client: ApiClient, kex: Resource
) -> None:
    listed = await client.list(kex, "default")
    async with client.watch(
        kex, "default", resource_version=listed.resource_version, timeout_seconds=1
    ) as events:
        seen = [e async for e in events if e.type != "BOOKMARK"]
    assert seen == []
    assert events.reconnects == 0


async def test_leaving_the_block_early_closes_the_stream(client: ApiClient, kex: Resource) -> None:
    for i in range(3):
        await client.create(kex, kex_body(f"o{i}"), namespace="default")
    async with client.watch(kex, "default") as events:
        await take(events, 1)
    assert [e async for e in events] == []  # closed: iteration ends, nothing raised


async def test_many_watches_run_at_once_on_one_client(client: ApiClient, kex: Resource) -> None:
    listed = await client.list(kex)
    names = [f"ns{i}" for i in range(15)]
    namespaces = await client.resolve("namespaces")
    for name in names:
        await client.create(namespaces, {"metadata": {"name": name}})
    seen: dict[str, str | None] = {}

    async def watch_one(namespace: str, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with client.watch(kex, namespace, resource_version=listed.resource_version) as events:
            task_status.started()
            (event,) = await take(events, 1)
            seen[namespace] = event.name

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for name in names:
                await tg.start(watch_one, name)
            for name in names:  # every watch is open before the first object exists
                await client.create(kex, kex_body(f"in-{name}"), namespace=name)
    assert seen == {name: f"in-{name}" for name in names}


@contextlib.asynccontextmanager
async def watch_then_create(
    client: ApiClient, kex: Resource, listed: Any, *names: str
) -> AsyncIterator[Any]:
    """A watch from ``listed``'s version, bookmarks off, then ``names`` created in order."""
    async with client.watch(
        kex, "default", resource_version=listed.resource_version, allow_bookmarks=False
    ) as events:
        for name in names:
            await client.create(kex, kex_body(name), namespace="default")
        yield events


async def test_received_events_are_taken_in_batches_in_order(
    client: ApiClient, kex: Resource
) -> None:
    listed = await client.list(kex, "default")
    async with watch_then_create(client, kex, listed, "a", "b", "c") as events:
        seen: list[str] = []
        with anyio.fail_after(10):
            while len(seen) < 3:
                assert await events.receive_more()
                seen.extend(str(e.name) for e in events.received())
        assert list(events.received()) == []  # every received event was taken once
    assert seen == ["a", "b", "c"]
    assert events.resource_version is not None
    assert int(events.resource_version) > int(listed.resource_version or 0)


async def test_delivered_events_go_to_the_consumer_in_order_and_are_counted(
    client: ApiClient, kex: Resource
) -> None:
    listed = await client.list(kex, "default")
    async with watch_then_create(client, kex, listed, "a", "b", "c") as events:
        await client.delete(kex, "b", "default")
        seen: list[WatchEvent] = []
        with anyio.fail_after(10):
            while len(seen) < 4:
                assert await events.receive_more()
                events.deliver(seen.append)
        assert list(events.received()) == []  # every received event was taken once
    assert [(e.type, e.name) for e in seen] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "c"),
        ("DELETED", "b"),
    ]
    assert seen[3].object["metadata"]["name"] == "b"
    assert events.taken == 4
    assert events.resource_version == seen[-1].resource_version
