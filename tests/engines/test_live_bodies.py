"""The newest body that daemons and timers read: kept as JSON, parsed on access, views live."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

import trikopf
from tests.clocks import virtual_time
from tests.engines.conftest import Cluster, Moments
from trikopf.actions.invocation import build_kwargs
from trikopf.bodies import Body, Patch
from trikopf.engines.background import LiveBody, ParsedBodies


def _body(name: str, size: int) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"a": "b"}}, "spec": {"size": size}}


def test_a_live_body_evicted_from_the_cache_is_parsed_again_with_its_newest_content() -> None:
    cache = ParsedBodies(2)
    first = LiveBody(_body("first", 1), cache)
    first.update(_body("first", 2))
    others = [LiveBody(_body(f"other-{i}", i), cache) for i in range(5)]
    assert cache.get(first) is None  # pushed out by the five others
    assert first.raw == _body("first", 2)
    assert first.raw is first.raw  # parsed once, then served from the cache
    assert [o.raw["spec"]["size"] for o in others] == [0, 1, 2, 3, 4]


def test_a_live_body_that_is_not_json_is_kept_as_it_is() -> None:
    cache = ParsedBodies(1)
    odd = {"metadata": {"name": "odd"}, "spec": {"tags": {"a", "b"}}}  # a set: no JSON
    live = LiveBody(odd, cache)
    LiveBody(_body("other", 1), cache)  # evicts the odd one
    assert live.raw is odd


def test_a_forgotten_live_body_leaves_the_cache_but_stays_readable() -> None:
    cache = ParsedBodies(4)
    live = LiveBody(_body("gone", 3), cache)
    live.forget()
    assert cache.get(live) is None
    assert live.raw["spec"] == {"size": 3}


def test_a_live_body_read_lately_stays_parsed_while_others_come_and_go() -> None:
    cache = ParsedBodies(2)
    hot = LiveBody(_body("hot", 1), cache)
    parsed = hot.raw
    for i in range(5):
        LiveBody(_body(f"other-{i}", i), cache)
        assert hot.raw is parsed  # each read makes it the freshest entry again: never evicted


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return virtual_time()


async def test_a_daemon_gets_every_kwarg_of_a_handler_plus_its_stop_flag(cluster: Cluster) -> None:
    registry = trikopf.OperatorRegistry()
    moments = Moments()
    seen: list[dict[str, Any]] = []

    @trikopf.daemon("kopfexamples", registry=registry, param="p")
    async def watcher(stopped: trikopf.AsyncDaemonStopped, **kwargs: Any) -> None:
        seen.append({"stopped": stopped, **kwargs})
        moments.mark("started")
        while not stopped:
            # The same views every time: they show the newest body, not the first.
            if kwargs["spec"].get("size") == 5 and kwargs["labels"].get("l") == "v":
                moments.mark("updated")
                break
            await stopped.wait(1)
        await stopped.wait()

    async with cluster.operator(registry):
        created = await cluster.create(spec={"size": 1})
        await moments.wait_for("started")
        await cluster.patch({"spec": {"size": 5}, "metadata": {"labels": {"l": "v"}}})
        await moments.wait_for("updated")
        kwargs = seen[0]
        assert kwargs["body"]["spec"] == {"size": 5}
        assert kwargs["meta"]["name"] == created["metadata"]["name"]
        assert kwargs["meta"].labels == {"l": "v"}  # the shortcuts of the views work too
        assert kwargs["body"].spec == {"size": 5}

    expected = build_kwargs(body=Body({}), patch=Patch(), logger=None, memo=None, resource=None)
    assert set(kwargs) == set(expected) | {"stopped"}
    assert kwargs["name"] == created["metadata"]["name"]
    views = {"body": trikopf.Body, "spec": trikopf.Spec, "meta": trikopf.Meta}
    views |= {"status": trikopf.Status, "labels": trikopf.Labels}
    views |= {"annotations": trikopf.Annotations, "metadata": trikopf.Meta}
    for key, cls in views.items():
        assert isinstance(kwargs[key], cls), key
    assert kwargs["uid"] == created["metadata"]["uid"]
    assert kwargs["param"] == "p"
    assert kwargs["retry"] == 0
    assert isinstance(kwargs["started"], datetime.datetime)
    assert isinstance(kwargs["runtime"], datetime.timedelta)
    assert isinstance(kwargs["patch"], trikopf.Patch)
    assert kwargs["reason"] is None
    assert kwargs["diff"] is None
    assert kwargs["stopped"].is_set()  # the operator has exited since
