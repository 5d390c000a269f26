"""Discovery and resolution of what a user writes to exactly one resource."""

from __future__ import annotations

import pytest

from tests.client.conftest import crd
from trikopf.client import AmbiguousResource, ApiClient, UnknownResource
from trikopf.structs import Resource


async def test_discovery_lists_core_and_group_resources(client: ApiClient) -> None:
    resources = await client.resources()
    pods = [r for r in resources if r.group == "" and r.plural == "pods"]
    assert len(pods) == 1
    assert pods[0].kind == "Pod"
    assert pods[0].namespaced is True
    assert "status" in pods[0].subresources
    assert "watch" in pods[0].verbs
    namespaces = next(r for r in resources if r.plural == "namespaces")
    assert namespaces.namespaced is False


async def test_every_way_of_naming_a_resource_resolves_to_it(
    client: ApiClient, kex: Resource
) -> None:
    assert (kex.group, kex.version, kex.plural, kex.kind) == (
        "kopf.dev",
        "v1",
        "kopfexamples",
        "KopfExample",
    )
    assert kex.short_names == ("kex",)
    assert "status" in kex.subresources
    for spec in [
        "kopfexamples",
        "KopfExample",
        "kopfexample",
        "kex",
        "kopfexamples.kopf.dev",
        "KopfExample.kopf.dev",
        "kopfexamples.v1.kopf.dev",
        "kopf.dev/v1/kopfexamples",
        "kopf.dev/v1",
        "kopf",  # the category
    ]:
        assert await client.resolve(spec) == kex, spec


async def test_core_resources_resolve_by_kind_and_group_version(client: ApiClient) -> None:
    pods = await client.resolve("Pod")
    assert (pods.group, pods.version, pods.plural) == ("", "v1", "pods")
    assert await client.resolve("v1/pods") == pods
    assert await client.resolve("po") == pods
    deployments = await client.resolve("deployments.apps")
    assert deployments.api_version == "apps/v1"


async def test_the_core_group_wins_like_in_kubectl(client: ApiClient) -> None:
    resources = await client.resources()
    event_groups = {r.group for r in resources if r.plural == "events"}
    events = await client.resolve("events")
    assert events.group == ""
    if len(event_groups) > 1:
        other = await client.resolve("events.events.k8s.io")
        assert other.group == "events.k8s.io"


async def test_unknown_resource_error_names_what_was_written(client: ApiClient) -> None:
    with pytest.raises(UnknownResource, match="no resource of the cluster matches 'gizmos'"):
        await client.resolve("gizmos")


async def test_same_plural_in_two_groups_is_ambiguous(client: ApiClient, kex: Resource) -> None:
    crds = await client.resolve("customresourcedefinitions")
    await client.create(crds, crd(group="other.example"))
    await client.resources(refresh=True)  # a cached discovery has no miss to refresh on
    with pytest.raises(AmbiguousResource) as info:
        await client.resolve("kopfexamples")
    message = str(info.value)
    assert "kopfexamples.v1.kopf.dev" in message
    assert "kopfexamples.v1.other.example" in message
    assert "plural.group" in message
    assert (await client.resolve("kopfexamples.other.example")).group == "other.example"
    both = await client.resolve_all("kopf")
    assert {r.group for r in both} == {"kopf.dev", "other.example"}


async def test_a_crd_created_later_is_found_by_refreshing_on_a_miss(client: ApiClient) -> None:
    before = await client.resources()
    assert not [r for r in before if r.plural == "kopfexamples"]
    crds = await client.resolve("customresourcedefinitions")
    await client.create(crds, crd())
    found = await client.resolve("kex")
    assert found.plural == "kopfexamples"


async def test_resolve_all_takes_globs_and_categories(client: ApiClient, kex: Resource) -> None:
    assert await client.resolve_all("*.kopf.dev") == [kex]
    assert await client.resolve_all("kopf*") == [kex]
    assert await client.resolve_all("no-such-category") == []
    everything = await client.resolve_all("all")
    assert any(r.plural == "pods" for r in everything)
