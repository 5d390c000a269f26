"""The whole path once through the real operator: watch → supervisor → round → PATCH → Events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trikopf
from trikopf.client import load_kubeconfig
from trikopf.testing.runner import open_operator
from trikopf.testing.waiting import wait_for_object

if TYPE_CHECKING:
    import pathlib

    from tests.processing.conftest import Harness

FINALIZER = "trikopf.dev/finalizer"


def _essence(body: Any) -> str:
    annotations = ((body or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get("trikopf.dev/last-handled-configuration", ""))


async def test_an_object_is_created_updated_and_deleted_through_the_operator(
    harness: Harness, kubeconfig_path: pathlib.Path
) -> None:
    calls: list[tuple[str, Any]] = []
    registry = harness.registry

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(spec: Any, **_: Any) -> dict[str, Any]:
        calls.append(("create", spec["size"]))
        return {"size": spec["size"]}

    @trikopf.on.update("kopfexamples", registry=registry)
    def update_fn(old: Any, new: Any, **_: Any) -> None:
        calls.append(("update", (old["spec"]["size"], new["spec"]["size"])))

    @trikopf.on.delete("kopfexamples", registry=registry)
    async def delete_fn(**_: Any) -> None:
        calls.append(("delete", None))

    settings = harness.settings
    settings.posting.batch_window = 0
    client, resource = harness.client, harness.resource
    async with open_operator(
        registry,
        connection=load_kubeconfig(kubeconfig_path),
        settings=settings,
        namespaces=["default"],
        stop_within=10,
    ):
        await harness.create(spec={"size": 1})
        created = await wait_for_object(
            client, resource, "obj", lambda b: bool(b and "create_fn" in b.get("status", {})),
            namespace="default",
        )  # fmt: skip
        assert created is not None
        assert created["status"]["create_fn"] == {"size": 1}
        assert FINALIZER in created["metadata"]["finalizers"]

        await harness.patch({"spec": {"size": 2}})
        updated = await wait_for_object(
            client, resource, "obj", lambda b: '"size":2' in _essence(b), namespace="default"
        )
        assert updated is not None

        await harness.delete()
        await wait_for_object(client, resource, "obj", lambda b: b is None, namespace="default")

    assert calls == [("create", 1), ("update", (1, 2)), ("delete", None)]
    reasons = {(t, r, m) for t, r, m in await harness.events()}
    assert ("Normal", "Success", "Handler 'create_fn' succeeded.") in reasons
    assert ("Normal", "Success", "Handler 'update_fn' succeeded.") in reasons
