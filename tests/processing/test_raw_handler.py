"""The prepared on.event path that the reactor uses: same behaviour as handle_raw_event."""

from __future__ import annotations

from typing import Any

import trikopf
from tests.processing.conftest import Harness
from trikopf.structs import WatchEvent


async def test_prepared_handlers_see_every_raw_event_with_filters_and_errors_logged(
    harness: Harness,
) -> None:
    seen: list[tuple[str, str, Any]] = []

    @trikopf.on.event("kopfexamples", registry=harness.registry, param="first")
    def on_event(event: dict[str, Any], type: str, name: str, param: Any, **_: Any) -> None:
        seen.append((type, f"{name}/{event['object']['metadata']['name']}", param))
        raise RuntimeError("ignored")

    @trikopf.on.event("kopfexamples", registry=harness.registry, param="second")
    async def second(type: str, param: Any, **_: Any) -> None:
        seen.append((type, "second", param))

    @trikopf.on.event("kopfexamples", registry=harness.registry, labels={"x": "y"})
    def filtered(**_: Any) -> None:
        seen.append(("filtered", "", None))

    handle = harness.raw_handler()
    body = await harness.create()
    for type_ in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
        await handle(WatchEvent(type=type_, object=body))
    assert seen == [
        ("ADDED", "obj/obj", "first"),
        ("ADDED", "second", "second"),
        ("MODIFIED", "obj/obj", "first"),
        ("MODIFIED", "second", "second"),
        ("DELETED", "obj/obj", "first"),
        ("DELETED", "second", "second"),
    ]


async def test_prepared_handlers_patches_are_sent(harness: Harness) -> None:
    @trikopf.on.event("kopfexamples", registry=harness.registry)
    def on_event(patch: trikopf.Patch, **_: Any) -> None:
        patch.metadata.annotations["seen-by"] = "event-handler"

    handle = harness.raw_handler()
    body = await harness.create()
    await handle(WatchEvent(type="ADDED", object=body))
    stored = await harness.get()
    assert stored["metadata"]["annotations"]["seen-by"] == "event-handler"
