"""The benchmark stream server speaks list and watch correctly (never a timing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.benchmarks import load_benchmark_module

RESOURCE = "/apis/kopf.dev/v1/kopfexamples"


streamserver = load_benchmark_module("streamserver.py")


@pytest.fixture
def server() -> Iterator[Any]:
    with streamserver.StreamServer(listed=5, stream=200, gate=True) as running:
        yield running


def _read_watch(client: httpx.Client, since: str, *, timeout_seconds: int = 1) -> list[bytes]:
    params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": str(timeout_seconds)}
    with client.stream("GET", RESOURCE, params=params) as response:
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line]


def test_list_returns_the_listed_objects_with_increasing_resource_versions(server: Any) -> None:
    with httpx.Client(base_url=server.url) as client:
        body = client.get(RESOURCE).json()
    versions = [int(item["metadata"]["resourceVersion"]) for item in body["items"]]
    assert len(versions) == 5
    assert versions == sorted(versions)
    assert len(set(versions)) == 5
    assert int(body["metadata"]["resourceVersion"]) == max(versions)
    assert all(item["kind"] == "KopfExample" for item in body["items"])


def test_watch_streams_one_event_per_line_for_distinct_objects_in_order(server: Any) -> None:
    server.release()
    with httpx.Client(base_url=server.url) as client:
        since = client.get(RESOURCE).json()["metadata"]["resourceVersion"]
        lines = _read_watch(client, since)
    events = [json.loads(line) for line in lines]
    assert len(events) == 200
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert versions[0] > int(since)
    assert len({e["object"]["metadata"]["uid"] for e in events}) == 200
    assert {e["type"] for e in events} == {"ADDED", "MODIFIED"}
    # Realistic sizes: every object is about 1.5 KB of JSON.
    assert all(1200 < len(json.dumps(e["object"])) < 2500 for e in events)


def test_watch_from_a_later_resource_version_skips_the_older_events(server: Any) -> None:
    server.release()
    with httpx.Client(base_url=server.url) as client:
        events = [json.loads(line) for line in _read_watch(client, "105")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == list(range(106, 206))


def test_gated_watch_sends_nothing_until_released(server: Any) -> None:
    params = {"watch": "true", "resourceVersion": "5", "timeoutSeconds": "1"}
    with (
        httpx.Client(base_url=server.url) as client,
        client.stream("GET", RESOURCE, params=params) as response,
    ):
        stats = server.wait_for_watchers(1)
        assert stats["watches"][0]["events"] == 0
        assert stats["released_at"] is None
        server.release()
        lines = [line for line in response.iter_lines() if line]
    assert len(lines) == 200
    watch = server.stats()["watches"][0]
    assert watch["events"] == 200
    assert watch["drained_at"] >= watch["started_at"] >= watch["opened_at"]


def test_patches_are_applied_counted_and_echoed_to_open_watches(server: Any) -> None:
    server.release()
    name = "example-0000002"
    with httpx.Client(base_url=server.url) as client:
        response = client.patch(
            f"/apis/kopf.dev/v1/namespaces/bench/kopfexamples/{name}",
            content=json.dumps({"status": {"create_fn": {"done": True}}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert response.status_code == 200
        patched = response.json()
        assert patched["status"] == {"create_fn": {"done": True}}
        assert patched["spec"]["field"] == "value-2"
        posted = client.post(
            "/api/v1/namespaces/bench/events",
            content=json.dumps({"reason": "Logging", "message": "ok"}),
            headers={"Content-Type": "application/json"},
        )
        assert posted.status_code == 201
        events = [json.loads(line) for line in _read_watch(client, "205")]
        got = client.get(f"/apis/kopf.dev/v1/namespaces/bench/kopfexamples/{name}").json()
    assert [e["type"] for e in events] == ["MODIFIED"]
    assert events[0]["object"]["metadata"]["resourceVersion"] == "206"
    assert got["status"] == {"create_fn": {"done": True}}
    stats = server.stats()
    assert stats["requests"]["PATCH"] == 1
    assert stats["requests"]["POST events"] == 1
    assert stats["writes"] == 2


def test_json_patches_are_applied_like_a_real_server(server: Any) -> None:
    name = "example-0000001"
    ops = [{"op": "add", "path": "/metadata/finalizers", "value": ["bench/finalizer"]}]
    with httpx.Client(base_url=server.url) as client:
        response = client.patch(
            f"/apis/kopf.dev/v1/namespaces/bench/kopfexamples/{name}",
            content=json.dumps(ops),
            headers={"Content-Type": "application/json-patch+json"},
        )
        bad = client.patch(
            f"/apis/kopf.dev/v1/namespaces/bench/kopfexamples/{name}",
            content=json.dumps([{"op": "move", "path": "/spec", "from": "/x"}]),
            headers={"Content-Type": "application/json-patch+json"},
        )
    assert response.json()["metadata"]["finalizers"] == ["bench/finalizer"]
    assert bad.status_code == 400
    assert "move" in bad.json()["message"]


def test_discovery_lists_the_kopfexamples_resource(server: Any) -> None:
    with httpx.Client(base_url=server.url) as client:
        groups = client.get("/apis").json()
        resources = client.get("/apis/kopf.dev/v1").json()
        missing = client.get("/apis/kopf.dev/v1/namespaces/bench/kopfexamples/nope")
    assert [g["name"] for g in groups["groups"]] == ["kopf.dev"]
    assert [r["name"] for r in resources["resources"]] == ["kopfexamples"]
    assert missing.status_code == 404


def test_objects_marked_handled_by_trikopf_carry_trikopf_s_own_essence() -> None:
    from trikopf.causes import encode_essence, essence_of

    body = streamserver.make_object(7, resource_version=8, handled="trikopf")
    stored = body["metadata"]["annotations"].pop("trikopf.dev/last-handled-configuration")
    assert json.loads(stored) == json.loads(encode_essence(essence_of(body, prefix="trikopf.dev")))


def test_objects_marked_handled_by_kopf_carry_only_kopf_s_annotation() -> None:
    body = streamserver.make_object(7, resource_version=8, handled="kopf")
    annotations = body["metadata"]["annotations"]
    essence = json.loads(annotations["kopf.zalando.org/last-handled-configuration"])
    assert essence["spec"] == body["spec"]
    assert "trikopf.dev/last-handled-configuration" not in annotations
    with pytest.raises(ValueError, match="handled="):
        streamserver.make_object(7, resource_version=8, handled="other")


def test_paced_stream_stamps_each_object_with_its_send_time_in_order() -> None:
    with (
        streamserver.StreamServer(stream=60, rate=2000.0, added_only=True) as paced,
        httpx.Client(base_url=paced.url) as client,
    ):
        events = [json.loads(line) for line in _read_watch(client, "0")]
    stamps = [e["object"]["metadata"]["annotations"]["bench.trikopf.dev/sent-at"] for e in events]
    assert len(stamps) == 60
    assert streamserver.SENT_AT_PLACEHOLDER not in stamps
    times = [float(stamp) for stamp in stamps]
    assert times == sorted(times)
    assert {e["type"] for e in events} == {"ADDED"}
