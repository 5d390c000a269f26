"""Kopf-style operators (``import trikopf as kopf``) run end to end on the embedded API server."""

from __future__ import annotations

from typing import Any

import trikopf
import trikopf as kopf
from tests.compat.conftest import Cluster, load_operator, status_of
from trikopf.testing import open_operator

FINALIZER = "compat.example.com/finalizer"


def _operator(cluster: Cluster, registry: trikopf.OperatorRegistry, memo: trikopf.Memo) -> Any:
    return open_operator(
        registry,
        connection=cluster.connection,
        namespaces=["default"],
        memo=memo,
        stop_within=30,
    )


async def test_kopf_operator_handles_creation_with_kopf_kwargs_results_patches_and_events(
    cluster: Cluster,
) -> None:
    registry = load_operator("kopf_style.py")
    memo = kopf.Memo()
    async with _operator(cluster, registry, memo):
        await cluster.create(
            "web",
            spec={"size": 2, "colour": "red"},
            labels={"app": "web"},
            annotations={"note": "n1"},
        )
        body = await cluster.wait_for(
            lambda b: all(
                status_of(b, key) is not None
                for key in ("create_fn", "flaky", "big_fn", "colour_fn/spec.colour")
            ),
            "web",
        )
        created = status_of(body, "create_fn")
        assert created["message"] == "hello, web"  # memo filled by the startup handler
        assert created["namespace"] == "default"
        assert created["uid_matches"] is True
        assert created["reason"] == "create"
        assert created["is_create"] is True
        assert created["retry"] == 0
        assert created["has_started"] is True
        assert created["resource"] == "kopfexamples"
        assert (created["label"], created["annotation"]) == ("web", "n1")
        owner = created["child"]["metadata"]["ownerReferences"][0]
        assert owner["uid"] == body["metadata"]["uid"]
        assert owner["kind"] == "KopfExample"
        assert created["child"]["metadata"]["generateName"] == "web-"
        assert created["child"]["metadata"]["labels"] == {"app": "web"}
        assert status_of(body, "flaky") == {"attempts": 3}
        assert status_of(body, "big_fn") == {"size": 2}
        # on.field fires on creation; a None in a result is dropped by the merge-patch (as in Kopf).
        assert status_of(body, "colour_fn/spec.colour") == {"new": "red"}
        assert status_of(body, "failing_fn") is None
        assert status_of(body, "resume_fn") is None  # created while the operator runs
        assert body["metadata"]["labels"]["handled-by"] == "compat"  # the handler's patch
        assert FINALIZER in body["metadata"]["finalizers"]  # from the startup handler
        await cluster.wait_for_event("web", lambda e: e[1:] == ("Greeting", "hello, web"))

        await cluster.patch({"spec": {"size": 3}}, "web")
        body = await cluster.wait_for(
            lambda b: status_of(b, "size_changed/spec.size") is not None, "web"
        )
        # With field=, the handler id gets the field (as in Kopf).
        assert status_of(body, "size_changed/spec.size") == {"old": 2, "new": 3, "ops": ["change"]}

        await cluster.delete("web")
        await cluster.wait_until_gone("web")
        assert memo.deleted == ["web"]
        assert memo.optional_deleted == ["web"]  # our finalizer held the deletion for it
        assert memo.created == ["web"]
        assert "ADDED" in memo.events
    assert memo.cleaned_up is True


async def test_permanent_errors_are_reported_as_warning_events_and_not_retried(
    cluster: Cluster,
) -> None:
    registry = load_operator("kopf_style.py")
    memo = kopf.Memo()
    async with _operator(cluster, registry, memo):
        await cluster.create("bad", spec={"size": 5}, labels={"fail": "yes"})
        body = await cluster.wait_for(lambda b: status_of(b, "create_fn") is not None, "bad")
        found = await cluster.wait_for_event(
            "bad", lambda e: e[0] == "Warning" and "this one cannot work" in e[2]
        )
        assert "failing_fn" in found[2]
        assert status_of(body, "failing_fn") is None
        assert status_of(body, "big_fn") is None  # its when= combinator said no
        # The cause is finished: the failed handler is not retried.
        assert "trikopf.dev/progress" not in (body["metadata"].get("annotations") or {})


async def test_objects_unhandled_before_the_start_get_create_and_resume_handlers(
    cluster: Cluster,
) -> None:
    registry = load_operator("kopf_style.py")
    memo = kopf.Memo()
    await cluster.create("early")  # before any operator: never handled
    async with _operator(cluster, registry, memo):
        body = await cluster.wait_for(
            lambda b: status_of(b, "create_fn") is not None and status_of(b, "flaky"), "early"
        )
        assert status_of(body, "create_fn")["reason"] == "create"
        assert status_of(body, "resume_fn") == {"reason": "create"}
    assert memo.created == ["early"]

    # The next operator process resumes the (now handled) object and does not create it again.
    await cluster.client.patch(
        cluster.resource,
        "early",
        {"status": {"resume_fn": None}},
        namespace="default",
        subresource="status",
    )
    async with _operator(cluster, registry, memo):
        body = await cluster.wait_for(lambda b: status_of(b, "resume_fn") is not None, "early")
        assert status_of(body, "resume_fn") == {"reason": "resume"}
    assert memo.created == []  # its startup handler began a new list; no creation since


async def test_optional_delete_handler_alone_puts_no_finalizer_and_is_not_called(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    calls: list[str] = []

    @kopf.on.create("kopfexamples", registry=registry)
    def create_fn(**_: Any) -> str:
        return "done"

    @kopf.on.delete("kopfexamples", optional=True, registry=registry)
    def delete_fn(name: str, **_: Any) -> None:
        calls.append(name)

    async with _operator(cluster, registry, kopf.Memo()):
        await cluster.create("free")
        body = await cluster.wait_for(lambda b: status_of(b, "create_fn") == "done", "free")
        assert not body["metadata"].get("finalizers")
        await cluster.delete("free")
        await cluster.wait_until_gone("free")
    assert calls == []


async def test_kopf_daemons_and_timers_stop_with_kopf_stop_reasons_on_deletion(
    cluster: Cluster,
) -> None:
    registry = load_operator("kopf_daemons.py")
    memo = kopf.Memo()
    async with _operator(cluster, registry, memo):
        await cluster.create("d1")
        await cluster.wait_for(lambda b: status_of(b, "tick") == {"ticked": True}, "d1")
        await cluster.delete("d1")
        await cluster.wait_until_gone("d1")
        # The finalizer is released only after the daemons have returned.
        assert memo.stopped == [("d1", kopf.DaemonStoppingReason.RESOURCE_DELETED)]
        assert memo.sync_stopped == [("d1", kopf.DaemonStoppingReason.RESOURCE_DELETED)]
        assert memo.started == ["d1"]
        assert set(memo.ticks) == {"d1"}


async def test_asyncio_handlers_run_on_asyncio_and_fail_clearly_on_trio(
    cluster: Cluster, anyio_backend: str
) -> None:
    registry = load_operator("kopf_asyncio.py")
    async with _operator(cluster, registry, kopf.Memo()):
        await cluster.create("aio")
        if anyio_backend == "asyncio":
            body = await cluster.wait_for(lambda b: status_of(b, "create_fn") is not None, "aio")
            assert status_of(body, "create_fn") == {"slept": True, "loop": True}
        else:
            found = await cluster.wait_for_event("aio", lambda e: "uses asyncio" in e[2])
            assert found[0] == "Warning"
            assert "--backend asyncio" in found[2]


async def test_kopf_login_handler_with_kopf_field_names_connects_the_operator(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    logins: list[object] = []

    @kopf.on.login(registry=registry)
    def login_fn(logger: kopf.Logger, **_: Any) -> kopf.ConnectionInfo:
        logins.append(logger)
        return kopf.ConnectionInfo(
            server=cluster.server.url, scheme="Bearer", default_namespace="default", priority=10
        )

    @kopf.on.create("kopfexamples", registry=registry)
    def create_fn(**_: Any) -> str:
        return "connected"

    async with open_operator(registry, namespaces=["default"], stop_within=30):
        await cluster.create("via-login")
        await cluster.wait_for(lambda b: status_of(b, "create_fn") == "connected", "via-login")
    assert len(logins) >= 1


async def test_objects_handled_by_kopf_are_resumed_not_created_again_with_kopf_persistence(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    calls: list[str] = []

    @kopf.on.startup(registry=registry)
    def take_over(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.annotation_prefix = "kopf.zalando.org"
        settings.persistence.finalizer = "kopf.zalando.org/KopfFinalizerMarker"

    @kopf.on.create("kopfexamples", registry=registry)
    def create_fn(**_: Any) -> None:
        calls.append("create")

    @kopf.on.resume("kopfexamples", registry=registry)
    def resume_fn(reason: str, **_: Any) -> str:
        calls.append(reason)
        return reason

    @kopf.on.delete("kopfexamples", registry=registry)
    def delete_fn(**_: Any) -> None:
        calls.append("delete")

    # As Kopf leaves an object it has handled: its essence annotation (compact JSON and a
    # newline) and its finalizer.
    await cluster.create(
        "from-kopf",
        spec={"size": 1},
        labels={"app": "web"},
        annotations={
            "kopf.zalando.org/last-handled-configuration": (
                '{"spec":{"size":1},"metadata":{"labels":{"app":"web"}}}\n'
            )
        },
        finalizers=["kopf.zalando.org/KopfFinalizerMarker"],
    )
    async with _operator(cluster, registry, kopf.Memo()):
        await cluster.wait_for(lambda b: status_of(b, "resume_fn") == "resume", "from-kopf")
        assert calls == ["resume"]
        await cluster.delete("from-kopf")  # Kopf's finalizer is now ours: delete handlers run
        await cluster.wait_until_gone("from-kopf")
    assert calls == ["resume", "delete"]


async def test_a_function_for_both_create_and_resume_runs_once_for_an_unhandled_object(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()
    calls: list[str] = []

    @kopf.on.create("kopfexamples", registry=registry)
    @kopf.on.resume("kopfexamples", registry=registry)
    def both(reason: str, param: Any, uid: str, status: Any, **_: Any) -> dict[str, Any]:
        calls.append(reason)
        return {"reason": reason, "param": param, "uid": bool(uid), "status": dict(status)}

    await cluster.create("pre", spec={"size": 1})
    async with _operator(cluster, registry, kopf.Memo()):
        body = await cluster.wait_for(lambda b: status_of(b, "both") is not None, "pre")
    assert calls == ["create"]
    assert status_of(body, "both") == {"reason": "create", "uid": True, "status": {}}


async def test_each_object_gets_its_own_memo_copied_from_the_operators_memo(
    cluster: Cluster,
) -> None:
    registry = trikopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def startup_fn(memo: kopf.Memo, **_: Any) -> None:
        memo.shared = []

    @kopf.on.create("kopfexamples", registry=registry)
    def create_fn(name: str, memo: kopf.Memo, **_: Any) -> None:
        memo.own = name  # stays with this object, as in Kopf
        memo.shared.append(name)  # the operator's list: seen by every object

    @kopf.timer("kopfexamples", interval=0.1, registry=registry)
    def tick(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
        return {"own": memo.get("own"), "shared": len(memo.shared)}

    root = kopf.Memo()
    async with _operator(cluster, registry, root):
        await cluster.create("a")
        await cluster.create("b")
        for name in ("a", "b"):
            body = await cluster.wait_for(
                lambda b: (status_of(b, "tick") or {}).get("shared") == 2, name
            )
            assert status_of(body, "tick")["own"] == name
    assert sorted(root.shared) == ["a", "b"]
    assert "own" not in root
