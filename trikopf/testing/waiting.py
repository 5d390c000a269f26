"""Waiting for an object to reach a state, through a watch, with a deadline (never sleeping)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio

from trikopf.client import ApiClient
from trikopf.client.errors import Gone, NotFound
from trikopf.structs import RawBody, Resource

__all__ = ["wait_for_object"]

Condition = Callable[[Mapping[str, Any] | None], bool]


async def wait_for_object(
    client: ApiClient,
    resource: Resource,
    name: str,
    condition: Condition,
    *,
    namespace: str | None = None,
    within: float = 10.0,
) -> RawBody | None:
    """Return the object once ``condition(body)`` is true (``body`` is ``None`` when absent).

    Reads the object, then follows a watch of its name from that resourceVersion, testing the
    condition on every change; so ``lambda b: b is None`` waits for a deletion. Raises
    :class:`TimeoutError` (with the last body seen) after ``within`` seconds. Starts no tasks.
    """
    last: RawBody | None = None
    with anyio.move_on_after(within):
        while True:
            try:
                last = await client.get(resource, name, namespace=namespace)
            except NotFound:
                last = None
            if condition(last):
                return last
            version = None if last is None else last["metadata"].get("resourceVersion")
            if version is None:
                # Absent now: watch from the list's version so a creation is not missed.
                listed = await client.list(
                    resource, namespace=namespace, field_selector=f"metadata.name={name}"
                )
                if listed.items:
                    continue
                version = listed.resource_version
            try:
                async with client.watch(
                    resource,
                    namespace=namespace,
                    resource_version=version,
                    field_selector=f"metadata.name={name}",
                ) as events:
                    async for event in events:
                        if event.type == "BOOKMARK" or event.name != name:
                            continue
                        last = None if event.type == "DELETED" else event.object
                        if condition(last):
                            return last
            except Gone:
                continue
    raise TimeoutError(
        f"{resource.kind} {name!r} did not reach the condition in {within}s: {last!r}"
    )
