"""Every verb against the embedded API server, over real HTTP."""

from __future__ import annotations

import pytest

from tests.client.conftest import kex_body
from trikopf.apiserver import ApiServer
from trikopf.client import (
    AlreadyExists,
    ApiClient,
    Conflict,
    NotFound,
    UnsupportedMediaType,
)
from trikopf.structs import ObjectMeta, Resource


async def test_create_get_and_delete_an_object(client: ApiClient, kex: Resource) -> None:
    created = await client.create(kex, kex_body("a", size=1), namespace="default")
    assert created["metadata"]["uid"]
    got = await client.get(kex, "a", namespace="default")
    assert got["spec"] == {"size": 1}
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    await client.delete(kex, "a", namespace="default")
    with pytest.raises(NotFound) as info:
        await client.get(kex, "a", namespace="default")
    assert info.value.code == 404
    assert info.value.status.reason == "NotFound"


async def test_creating_twice_raises_already_exists(client: ApiClient, kex: Resource) -> None:
    await client.create(kex, kex_body("a"), namespace="default")
    with pytest.raises(AlreadyExists) as info:
        await client.create(kex, kex_body("a"), namespace="default")
    assert isinstance(info.value, Conflict)
    assert info.value.status.details is not None
    assert info.value.status.details.name == "a"


async def test_namespace_is_taken_from_the_body(client: ApiClient, kex: Resource) -> None:
    body = kex_body("a")
    body["metadata"]["namespace"] = "kube-public"
    await client.create(kex, body)
    assert (await client.get(kex, "a", "kube-public"))["metadata"]["namespace"] == "kube-public"


async def test_replace_with_a_stale_resource_version_conflicts(
    client: ApiClient, kex: Resource
) -> None:
    created = await client.create(kex, kex_body("a", size=1), namespace="default")
    fresh = dict(created, spec={"size": 2})
    replaced = await client.replace(kex, "a", fresh, namespace="default")
    assert replaced["spec"] == {"size": 2}
    stale = dict(created, spec={"size": 3})
    with pytest.raises(Conflict):
        await client.replace(kex, "a", stale, namespace="default")


async def test_merge_json_and_status_patches(client: ApiClient, kex: Resource) -> None:
    await client.create(kex, kex_body("a", size=1, keep="yes"), namespace="default")
    merged = await client.patch(kex, "a", {"spec": {"size": 5}}, namespace="default")
    assert merged["spec"] == {"size": 5, "keep": "yes"}
    ops = [{"op": "remove", "path": "/spec/keep"}, {"op": "add", "path": "/spec/x", "value": 1}]
    patched = await client.patch(kex, "a", ops, namespace="default", patch_type="json")
    assert patched["spec"] == {"size": 5, "x": 1}
    status = await client.patch(
        kex, "a", {"status": {"ok": True}, "spec": {"ignored": 1}}, "default", subresource="status"
    )
    assert status["status"] == {"ok": True}
    assert "ignored" not in status["spec"]  # the status subresource changes status only


async def test_strategic_merge_patch_on_a_built_in_kind(client: ApiClient, kex: Resource) -> None:
    cm = await client.resolve("configmaps")
    await client.create(cm, {"metadata": {"name": "c"}, "data": {"a": "1"}}, "default")
    patched = await client.patch(cm, "c", {"data": {"b": "2"}}, "default", patch_type="strategic")
    assert patched["data"] == {"a": "1", "b": "2"}
    await client.create(kex, kex_body("a"), namespace="default")
    with pytest.raises(UnsupportedMediaType):
        await client.patch(kex, "a", {"spec": {}}, "default", patch_type="strategic")


async def test_delete_with_a_stale_precondition_conflicts(client: ApiClient, kex: Resource) -> None:
    created = await client.create(kex, kex_body("a"), namespace="default")
    with pytest.raises(Conflict):
        await client.delete(kex, "a", "default", preconditions={"uid": "not-the-uid"})
    await client.delete(
        kex,
        "a",
        "default",
        preconditions={"uid": created["metadata"]["uid"]},
        propagation_policy="Foreground",
    )
    with pytest.raises(NotFound):
        await client.get(kex, "a", "default")


async def test_delete_with_a_finalizer_marks_the_object(client: ApiClient, kex: Resource) -> None:
    body = kex_body("a")
    body["metadata"]["finalizers"] = ["kopf.dev/test"]
    await client.create(kex, body, namespace="default")
    result = await client.delete(kex, "a", "default")
    assert result is not None
    meta = ObjectMeta.from_raw((await client.get(kex, "a", "default"))["metadata"])
    assert meta.deletion_timestamp is not None
    assert meta.finalizers == ["kopf.dev/test"]
    await client.patch(kex, "a", {"metadata": {"finalizers": None}}, "default")
    with pytest.raises(NotFound):
        await client.get(kex, "a", "default")


async def test_list_pages_through_every_object(client: ApiClient, kex: Resource) -> None:
    for i in range(7):
        await client.create(kex, kex_body(f"o{i}"), namespace="default")
    first = await client.list(kex, "default", limit=3)
    assert len(first.items) == 3
    assert first.continue_
    assert first.resource_version
    names = [o["metadata"]["name"] for o in first.items]
    token = first.continue_
    while token:
        page = await client.list(kex, "default", limit=3, continue_=token)
        names += [o["metadata"]["name"] for o in page.items]
        token = page.continue_
    assert sorted(names) == [f"o{i}" for i in range(7)]
    everything = await client.list_all(kex, "default", page_size=2)
    assert sorted(o["metadata"]["name"] for o in everything.items) == sorted(names)
    assert everything.continue_ is None


async def test_list_filters_by_label_and_field_selectors(client: ApiClient, kex: Resource) -> None:
    for name, tier in [("a", "web"), ("b", "db"), ("c", "web")]:
        body = kex_body(name)
        body["metadata"]["labels"]["tier"] = tier
        await client.create(kex, body, namespace="default")
    await client.create(kex, kex_body("z"), namespace="kube-public")
    web = await client.list(kex, "default", label_selector="tier=web")
    assert sorted(o["metadata"]["name"] for o in web.items) == ["a", "c"]
    not_web = await client.list(kex, None, label_selector="tier!=web")
    assert sorted(o["metadata"]["name"] for o in not_web.items) == ["b", "z"]
    named = await client.list(kex, None, field_selector="metadata.name=b")
    assert [o["metadata"]["name"] for o in named.items] == ["b"]
    everywhere = await client.list(kex)
    assert len(everywhere.items) == 4


async def test_events_are_posted_about_an_object(
    client: ApiClient, kex: Resource, apiserver: ApiServer
) -> None:
    obj = await client.create(kex, kex_body("a"), namespace="default")
    await client.post_event(involved=obj, type="Warning", reason="Failed", message="x" * 2000)
    events = apiserver.objects("events", "default")
    assert len(events) == 1
    event = events[0]
    assert event["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert event["involvedObject"]["kind"] == "KopfExample"
    assert (event["type"], event["reason"]) == ("Warning", "Failed")
    assert len(event["message"]) == 1024
    assert event["source"]["component"] == "trikopf"


async def test_a_namespaced_resource_needs_a_namespace(client: ApiClient, kex: Resource) -> None:
    with pytest.raises(ValueError, match="is namespaced"):
        await client.get(kex, "a")
