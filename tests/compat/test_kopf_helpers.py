"""Kopf's small helpers and aliases: adopt & co., when= combinators, settings names, run keywords."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import trikopf as kopf

OWNER: dict[str, Any] = {
    "apiVersion": "kopf.dev/v1",
    "kind": "KopfExample",
    "metadata": {
        "name": "parent",
        "namespace": "ns1",
        "uid": "uid-1",
        "labels": {"app": "web", "tier": "front"},
    },
}


def test_adopt_makes_plain_dicts_children_of_the_owner() -> None:
    pod: dict[str, Any] = {"kind": "Pod"}
    named: dict[str, Any] = {"kind": "Pod", "metadata": {"name": "own", "labels": {"app": "x"}}}
    kopf.adopt([pod, named], owner=OWNER)
    assert pod["metadata"] == {
        "ownerReferences": [
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "KopfExample",
                "name": "parent",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
        "generateName": "parent-",
        "namespace": "ns1",
        "labels": {"app": "web", "tier": "front"},
    }
    # What the child had already is kept; only the missing parts are added.
    assert named["metadata"]["name"] == "own"
    assert "generateName" not in named["metadata"]
    assert named["metadata"]["labels"] == {"app": "x", "tier": "front"}


def test_adopt_twice_adds_one_owner_reference_and_strict_forced_naming_overrides() -> None:
    job: dict[str, Any] = {"metadata": {"generateName": "mine-"}, "spec": {"template": {}}}
    kopf.adopt(job, owner=OWNER, nested="spec.template")
    kopf.adopt(job, owner=OWNER, strict=True, forced=True)
    assert len(job["metadata"]["ownerReferences"]) == 1
    assert job["metadata"]["name"] == "parent"
    assert "generateName" not in job["metadata"]
    assert job["spec"]["template"]["metadata"]["labels"] == {"app": "web", "tier": "front"}


def test_owner_references_are_removed_and_labels_forced() -> None:
    cm: dict[str, Any] = {"metadata": {"labels": {"app": "old"}}}
    kopf.append_owner_reference(cm, OWNER, controller=False)
    assert cm["metadata"]["ownerReferences"][0]["controller"] is False
    kopf.remove_owner_reference(cm, OWNER)
    assert cm["metadata"]["ownerReferences"] == []
    kopf.label(cm, {"app": "new"}, forced=True)
    kopf.adjust_namespace(cm, "ns2")
    kopf.harmonize_naming(cm, "base", strict=True)
    assert cm["metadata"] == {
        "labels": {"app": "new"},
        "ownerReferences": [],
        "namespace": "ns2",
        "name": "base",
    }


def test_hierarchy_helpers_refuse_what_they_cannot_do() -> None:
    with pytest.raises(LookupError, match="owner"):
        kopf.adopt({})  # no handler runs here, so there is no default owner
    with pytest.raises(ValueError, match="uid"):
        kopf.append_owner_reference({}, {"kind": "X", "metadata": {"name": "n"}})
    with pytest.raises(TypeError, match="dict"):
        kopf.label(["not a dict"], {"a": "b"})  # type: ignore[list-item]
    with pytest.raises(TypeError, match="dict"):
        kopf.adopt(kopf.Body(OWNER), owner=OWNER)  # read-only views cannot be changed


def test_references_are_built_from_bodies() -> None:
    assert kopf.build_object_reference(kopf.Body(OWNER)) == {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "name": "parent",
        "uid": "uid-1",
        "namespace": "ns1",
    }
    assert (
        kopf.build_owner_reference(OWNER, block_owner_deletion=False)["blockOwnerDeletion"] is False
    )


def test_when_combinators_combine_callbacks() -> None:
    big = lambda spec, **_: spec["size"] > 1  # noqa: E731
    red = lambda spec, **_: spec["colour"] == "red"  # noqa: E731
    spec = {"size": 2, "colour": "blue"}
    assert kopf.all_([big])(spec=spec) is True
    assert kopf.all_([big, red])(spec=spec) is False
    assert kopf.any_([big, red])(spec=spec) is True
    assert kopf.none_([big, red])(spec=spec) is False
    assert kopf.not_(red)(spec=spec) is True


def test_settings_are_reachable_under_kopf_names() -> None:
    settings = kopf.OperatorSettings()
    settings.batching.worker_limit = 7
    settings.batching.exit_timeout = 3.0
    settings.execution.max_workers = 2
    settings.peering.standalone = True
    settings.queueing.idle_timeout = 9.0
    settings.execution.default_backoff = 4.0
    assert settings.processing.idle_timeout == 9.0
    assert settings.execution.backoff == 4.0
    assert settings.processing.worker_limit == 7
    assert settings.processing.grace_period == 3.0
    assert settings.execution.max_sync_threads == 2
    assert settings.execution.max_workers == 2
    with pytest.raises(ValueError, match="peering"):
        settings.peering.standalone = False
    with pytest.raises(ValueError, match="positive"):
        settings.execution.max_workers = 0


def test_daemon_stopping_reasons_have_kopf_names() -> None:
    reason = kopf.DaemonStoppingReason
    assert reason.RESOURCE_DELETED is kopf.StopReason.DELETED
    assert reason.FILTERS_MISMATCH is kopf.StopReason.FILTERED_OUT
    assert reason.OPERATOR_EXITING is kopf.StopReason.OPERATOR_EXITING


def test_run_refuses_kopf_keywords_it_cannot_honour() -> None:
    with pytest.raises(TypeError, match="backend='asyncio'"):
        kopf.run(loop=object())
    with pytest.raises(ValueError, match="peering"):
        kopf.run(standalone=False)
    with pytest.raises(ValueError, match="peering"):
        kopf.run(peering_name="default")


async def test_operator_refuses_peering_before_starting_anything() -> None:
    with pytest.raises(ValueError, match="standalone"):
        await kopf.operator(standalone=False)


def test_configure_sets_up_logging_like_the_command_line() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        kopf.configure(verbose=True, log_format=kopf.LogFormat.JSON)
        assert root.level == logging.INFO
        assert logging.getLogger("trikopf").level == logging.DEBUG
        assert type(root.handlers[-1].formatter).__name__ == "JsonFormatter"
        kopf.configure(quiet=True)
        assert root.level == logging.WARNING
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.getLogger("trikopf").setLevel(logging.NOTSET)


def test_login_helpers_return_none_where_there_is_nothing_to_log_in_with(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kopf.login_with_kubeconfig() is None
    assert kopf.login_with_service_account() is None


def test_login_with_kubeconfig_reads_the_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    path = tmp_path / "config"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://example.invalid:6443'}}]\n"
        "users: [{name: u, user: {token: t0ken}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: ns9}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    info = kopf.login_with_kubeconfig()
    assert isinstance(info, kopf.ConnectionInfo)
    assert info.server == "https://example.invalid:6443"
    path.write_text("not: [a kubeconfig")
    with pytest.raises(kopf.LoginError):
        kopf.login_with_kubeconfig()


def _only(registry: kopf.OperatorRegistry) -> Any:
    handlers = [
        *registry.changing_handlers,
        *registry.watching_handlers,
        *registry.daemon_handlers,
        *registry.timer_handlers,
    ]
    assert len(handlers) == 1
    return handlers[0]


@pytest.mark.parametrize(
    "decorate",
    [
        lambda r: kopf.daemon("kopfexamples", field="spec.monitor", registry=r),
        lambda r: kopf.timer("kopfexamples", interval=1, field="spec.monitor", registry=r),
        lambda r: kopf.on.event("kopfexamples", field="spec.monitor", registry=r),
        lambda r: kopf.on.resume("kopfexamples", field="spec.monitor", registry=r),
        lambda r: kopf.on.delete("kopfexamples", field="spec.monitor", registry=r),
    ],
    ids=["daemon", "timer", "event", "resume", "delete"],
)
def test_field_alone_selects_only_objects_that_have_the_field(decorate: Any) -> None:
    registry = kopf.OperatorRegistry()
    decorate(registry)(lambda **_: None)
    handler = _only(registry)
    assert handler.passes_filters({"spec": {"monitor": {"every": 5}}}, {}) is True
    assert handler.passes_filters({"spec": {"other": 1}}, {}) is False


def test_field_of_update_handlers_goes_by_the_change_even_when_the_field_is_removed() -> None:
    registry = kopf.OperatorRegistry()
    kopf.on.update("kopfexamples", field="spec.monitor", registry=registry)(lambda **_: None)
    assert _only(registry).passes_filters({"spec": {}}, {}) is True
