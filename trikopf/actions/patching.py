"""Sending what one round changed: one merge-patch for the object, one for its status if needed.

The round collects everything (handler results, the user's ``patch``, progress and essence
annotations, finalizer edits) into one merge-patch. It goes out as one PATCH; only when the
resource has a status subresource and the round wrote status is the status sent separately (the
API ignores status in a patch of the main resource then). Finalizer edits carry the object's
``resourceVersion`` so that they never drop another controller's finalizer: a 409 fetches the
fresh object and applies the edit again. An object that is gone (404) ends the round quietly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import anyio

from trikopf.client.errors import (
    ApiConnectionError,
    Conflict,
    NotFound,
    ServerError,
)
from trikopf.structs import Resource

__all__ = ["PatchClient", "apply_merge_patch", "apply_patch", "merge_into"]

logger = logging.getLogger("trikopf.patching")

_CONFLICT_ATTEMPTS = 5
_TRANSIENT_ATTEMPTS = 3
_TRANSIENT_DELAY = 0.5


class PatchClient(Protocol):
    """What sending a round's changes needs of the API client."""

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Any: ...

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        subresource: str | None = None,
        patch_type: str = "merge",
    ) -> Any: ...


# JSON's leaves: never mappings, told apart without the (slow) abstract-class check.
_LEAVES = frozenset({str, int, float, bool, type(None), list})


def _is_mapping(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        return True
    return kind not in _LEAVES and isinstance(value, Mapping)


def merge_into(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a merge-patch into another one (the later one wins, dicts merge key by key)."""
    for key, value in patch.items():
        if _is_mapping(value):
            current = target.get(key)
            if type(current) is dict or isinstance(current, dict):
                merge_into(current, value)
            else:
                target[key] = merge_into({}, value)
        else:
            target[key] = value
    return target


def apply_merge_patch(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a JSON merge-patch (RFC 7386) to ``target`` in place: ``None`` removes a key."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif _is_mapping(value):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            apply_merge_patch(current, value)
        else:
            target[key] = value
    return target


class Gone(Exception):
    """The object disappeared while the round was sending its changes."""


async def _send(
    client: PatchClient,
    resource: Resource,
    name: str,
    namespace: str | None,
    patch: Mapping[str, Any],
    subresource: str | None = None,
) -> Any:
    """One PATCH, retried a few times on server errors; 404 → :class:`Gone`.

    (The client itself retries throttling; it does not retry non-idempotent requests on 5xx.)
    """
    for attempt in range(_TRANSIENT_ATTEMPTS):
        try:
            return await client.patch(
                resource, name, patch, namespace=namespace, subresource=subresource
            )
        except NotFound:
            raise Gone() from None
        except (ServerError, ApiConnectionError):
            if attempt == _TRANSIENT_ATTEMPTS - 1:
                raise
            await anyio.sleep(_TRANSIENT_DELAY * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def apply_patch(
    client: PatchClient,
    resource: Resource,
    body: Mapping[str, Any],
    patch: dict[str, Any],
    *,
    finalizers: Callable[[list[str]], list[str]] | None = None,
) -> Mapping[str, Any] | None:
    """Send the round's changes; return the object as the API returned it last.

    ``finalizers`` edits the object's finalizer list (applied again on fresh state after a
    conflict). Returns ``None`` when the object is gone (404), ``body`` when nothing was sent.
    Other API errors propagate after a few retries on throttling and server errors.
    """
    meta = body.get("metadata") or {}
    name = str(meta.get("name"))
    namespace = meta.get("namespace")
    patch = dict(patch)
    current: Mapping[str, Any] = body
    try:
        if "status" in patch and "status" in resource.subresources:
            status = patch.pop("status")
            if status:
                current = await _send(
                    client, resource, name, namespace, {"status": status}, subresource="status"
                )
        if finalizers is None:
            if patch:
                current = await _send(client, resource, name, namespace, patch)
            return current
        for attempt in range(_CONFLICT_ATTEMPTS):
            cmeta = current.get("metadata") or {}
            old = list(cmeta.get("finalizers") or ())
            new = finalizers(old)
            full = dict(patch)
            if new != old:
                edit = {"finalizers": new, "resourceVersion": cmeta.get("resourceVersion")}
                full = merge_into(full, {"metadata": edit})
            if not full:
                return current
            try:
                return await _send(client, resource, name, namespace, full)  # type: ignore[no-any-return]
            except Conflict:
                if attempt == _CONFLICT_ATTEMPTS - 1:
                    raise
                logger.debug("Conflict on %s/%s; retrying on fresh state", namespace, name)
                try:
                    current = await client.get(resource, name, namespace=namespace)
                except NotFound:
                    return None
        raise AssertionError("unreachable")  # pragma: no cover
    except Gone:
        return None
