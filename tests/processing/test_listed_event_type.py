"""Objects found by a listing reach ``on.event`` handlers with no type, as in Kopf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import pytest

import trikopf
from tests.kopfexample import NAMESPACE
from trikopf.client import load_kubeconfig
from trikopf.processing import handle_raw_event
from trikopf.structs import WatchEvent
from trikopf.testing.runner import open_operator

if TYPE_CHECKING:
    import pathlib

    from tests.processing.conftest import Harness


@pytest.mark.parametrize("with_change_handlers", [False, True], ids=["raw", "mixed"])
async def test_listed_objects_have_no_type_and_streamed_ones_have_theirs(
    harness: Harness, kubeconfig_path: pathlib.Path, with_change_handlers: bool
) -> None:
    seen: list[tuple[str, Any, Any]] = []
    listed, arrived = anyio.Event(), anyio.Event()
    registry = harness.registry

    # A **kwargs handler (the direct call) and one that names its kwargs (the kwargs mapping).
    @trikopf.on.event("kopfexamples", registry=registry)
    async def direct(event: dict[str, Any], type: Any, name: str, **_: Any) -> None:
        seen.append((name, type, event["type"]))

    @trikopf.on.event("kopfexamples", registry=registry)
    async def named(event: dict[str, Any], type: Any, name: str, logger: Any) -> None:
        seen.append((f"{name}:named", type, event["type"]))
        (arrived if name == "later" else listed).set()

    if with_change_handlers:

        @trikopf.on.resume("kopfexamples", registry=registry)
        @trikopf.on.create("kopfexamples", registry=registry)
        async def changed(**_: Any) -> None:
            pass

    await harness.create("before")
    harness.settings.posting.batch_window = 0
    async with open_operator(
        registry,
        connection=load_kubeconfig(kubeconfig_path),
        settings=harness.settings,
        namespaces=[NAMESPACE],
        stop_within=10,
    ):
        with anyio.fail_after(10):
            await listed.wait()
        await harness.create("later")
        with anyio.fail_after(10):
            await arrived.wait()

    assert seen[:2] == [("before", None, None), ("before:named", None, None)]
    assert ("later", "ADDED", "ADDED") in seen
    assert ("later:named", "ADDED", "ADDED") in seen
    assert all(t is not None for name, t, _ in seen if name.startswith("later"))


async def test_handle_raw_event_gives_no_type_for_a_listed_object(harness: Harness) -> None:
    seen: list[tuple[Any, Any]] = []

    @trikopf.on.event("kopfexamples", registry=harness.registry)
    async def direct(event: dict[str, Any], type: Any, **_: Any) -> None:
        seen.append((type, event["type"]))

    body = await harness.create()
    for listed in (True, False):
        await handle_raw_event(
            registry=harness.registry,
            settings=harness.settings,
            resource=harness.resource,
            event=WatchEvent(type="ADDED", object=body, listed=listed),
            client=harness.client,
        )
    assert seen == [(None, None), ("ADDED", "ADDED")]
