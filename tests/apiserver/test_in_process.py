"""The in-process server's direct access: objects, lookups and writes that watchers see."""

from __future__ import annotations

import pathlib

import httpx
import pytest
import yaml

from tests.apiserver.crds import create_crd
from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer, open_apiserver


async def test_objects_are_found_by_any_resource_name(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await create_crd(client)
    await client.post(
        "/apis/kopf.dev/v1/namespaces/default/kopfexamples",
        json={"apiVersion": "kopf.dev/v1", "kind": "KopfExample", "metadata": {"name": "k"}},
    )
    for name in ("kopfexamples", "kopfexample", "KopfExample", "kex", "kopfexamples.kopf.dev"):
        assert [o["metadata"]["name"] for o in apiserver.objects(name)] == ["k"], name
    with pytest.raises(LookupError):
        apiserver.objects("widgets")


async def test_returned_objects_are_copies(apiserver: ApiServer) -> None:
    apiserver.create_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    )
    copy = apiserver.get_object("configmaps", "c", "default")
    assert copy is not None
    copy["data"]["a"] = "changed"
    again = apiserver.get_object("cm", "c", "default")
    assert again is not None
    assert again["data"] == {"a": "1"}


async def test_direct_creates_reach_watchers(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    async with open_watch(
        client, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", resourceVersion="1"
    ) as events:
        created = apiserver.create_object(
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "l", "namespace": "kube-system"},
            }
        )
        event = await events.next()
    assert event["type"] == "ADDED"
    assert event["object"]["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(LookupError):
        apiserver.create_object({"apiVersion": "v9", "kind": "Nothing", "metadata": {"name": "x"}})


async def test_kubeconfig_is_complete_and_written_privately(tmp_path: pathlib.Path) -> None:
    async with open_apiserver(token="t") as server:
        path = server.write_kubeconfig(tmp_path / "nested" / "config")
        assert path.stat().st_mode & 0o777 == 0o600
        config = yaml.safe_load(path.read_text())
        assert config == server.kubeconfig
        context = config["contexts"][0]["context"]
        assert context == {"cluster": "trikopf", "user": "trikopf", "namespace": "default"}
        assert "certificate-authority-data" not in config["clusters"][0]["cluster"]


async def test_kubeconfig_path_fixture_points_at_the_apiserver_fixture(
    apiserver: ApiServer, kubeconfig_path: pathlib.Path
) -> None:
    config = yaml.safe_load(kubeconfig_path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == apiserver.url


async def test_open_apiserver_rejects_a_nonsense_history_window() -> None:
    with pytest.raises(ValueError, match="history_window"):
        async with open_apiserver(history_window=0):
            pass


@pytest.mark.apiserver(token="marked", history_window=5)
async def test_the_apiserver_marker_configures_the_fixture(apiserver: ApiServer) -> None:
    assert apiserver.token == "marked"
    assert apiserver.store.history_window == 5
    async with httpx.AsyncClient(base_url=apiserver.url) as client:
        assert (await client.get("/api")).status_code == 401
