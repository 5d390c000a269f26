"""What one event means for the change handlers: (event, body, stored essence) → a cause.

Pure: no I/O, no clock. The essence of an object is what users change on purpose — everything
except ``status`` and ``metadata``, plus the user's labels and annotations. The last essence that
the handlers saw is stored on the object in an annotation; comparing it with the current one
tells creation (nothing stored) from an update (something different stored, with a diff) from
nothing to do. ``deletionTimestamp`` with our finalizer means deletion. An object seen for the
first time by this operator process with nothing changed is "resumed".
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from trikopf.diffs import Diff, DiffItem, DiffOperation, diff

__all__ = [
    "DIGEST_PREFIX",
    "ChangeCause",
    "Reason",
    "detect_change_cause",
    "encode_essence",
    "essence_of",
    "get_finalizers",
    "same_essence",
]

# Annotations that are never part of the essence, besides our own (those under the prefix).
_SYSTEM_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
_NON_ESSENCE_KEYS = frozenset({"apiVersion", "kind", "metadata", "status"})
_MISSING = object()
DIGEST_PREFIX = "sha256:"

try:  # orjson is optional: faster, same bytes for the same data (sorted keys, compact).
    import orjson

    def _dumps(value: Any) -> str:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # integers beyond 64 bits: the standard library copes
            return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

except ImportError:  # pragma: no cover - exercised only without the extra

    def _dumps(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class Reason(str, enum.Enum):
    """Why the change handlers are called (``reason=`` of handlers)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESUME = "resume"
    NOOP = "noop"
    FREE = "free"  # being deleted, and our finalizer is not on it: nothing for us to do
    GONE = "gone"  # the object no longer exists

    def __str__(self) -> str:
        return self.value


@attrs.frozen(kw_only=True)
class ChangeCause:
    """The outcome of change detection for one body.

    ``old``/``new`` are the previous and current essences (``old`` is ``None`` on creation and when
    the stored essence was only a digest), ``diff`` their difference, ``essence`` the current
    essence encoded as it is stored, ``initial`` whether this operator sees the object for the
    first time.
    """

    reason: Reason
    initial: bool = False
    old: Mapping[str, Any] | None = None
    new: Mapping[str, Any] | None = None
    diff: Diff = attrs.field(factory=Diff)
    essence: str | None = None


def get_finalizers(body: Mapping[str, Any]) -> list[str]:
    """The object's finalizers (an empty list if it has none)."""
    return list((body.get("metadata") or {}).get("finalizers") or ())


def essence_of(body: Mapping[str, Any], *, prefix: str) -> dict[str, Any]:
    """The part of the object that change detection compares: a new dict, the body is untouched.

    Everything but ``apiVersion``, ``kind``, ``metadata`` and ``status``; from ``metadata`` only
    the labels and the annotations that are not ours (``prefix/...``) nor kubectl's.
    """
    essence = {k: v for k, v in body.items() if k not in _NON_ESSENCE_KEYS}
    meta = body.get("metadata") or {}
    labels = meta.get("labels")
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in _SYSTEM_ANNOTATIONS and not k.startswith(prefix + "/")
    }
    metadata: dict[str, Any] = {}
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = annotations
    if metadata:
        essence["metadata"] = metadata
    return essence


def same_essence(a: Mapping[str, Any], b: Mapping[str, Any], *, prefix: str) -> bool:
    """Whether two bodies have the same essence (as :func:`essence_of` sees it), without copies.

    Cheaper than comparing two essences: nothing is built or encoded, dicts compare in place.
    """
    for key, value in a.items():
        if key not in _NON_ESSENCE_KEYS and b.get(key, _MISSING) != value:
            return False
    for key in b:
        if key not in a and key not in _NON_ESSENCE_KEYS:
            return False
    ma = a.get("metadata") or {}
    mb = b.get("metadata") or {}
    if (ma.get("labels") or None) != (mb.get("labels") or None):
        return False
    aa = ma.get("annotations") or {}
    ab = mb.get("annotations") or {}
    if aa == ab:
        return True
    ours = prefix + "/"
    for key, value in aa.items():
        if ab.get(key, _MISSING) != value and not _ours_or_system(key, ours):
            return False
    return all(key in aa or _ours_or_system(key, ours) for key in ab)


def _ours_or_system(key: str, ours: str) -> bool:
    return key in _SYSTEM_ANNOTATIONS or key.startswith(ours)


def encode_essence(essence: Mapping[str, Any], *, limit: int | None = None) -> str:
    """The essence as stored in the annotation: compact JSON with sorted keys.

    When the JSON is longer than ``limit`` characters, a ``sha256:<hex>`` digest is stored instead:
    changes are still detected, but the diff of the next update cannot be computed in detail.
    """
    encoded = _dumps(essence)
    if limit is not None and len(encoded) > limit:
        return DIGEST_PREFIX + hashlib.sha256(encoded.encode()).hexdigest()
    return encoded


def detect_change_cause(
    *,
    event_type: str,
    body: Mapping[str, Any],
    finalizer: str,
    stored_essence: str | None,
    prefix: str,
    initial: bool = False,
    essence_limit: int | None = None,
    initial_create: bool | None = None,
) -> ChangeCause:
    """Decide the cause of one round from the event and the body.

    ``stored_essence`` is the annotation's value (``None`` if absent). The current essence is
    computed only when the object is not being deleted. ``initial_create``, if given, is the
    ``initial`` of a creation instead of ``initial`` (an object born while the operator runs is
    first seen, but not resumed).
    """
    if event_type == "DELETED":
        return ChangeCause(reason=Reason.GONE, initial=initial)
    meta = body.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        reason = Reason.DELETE if finalizer in (meta.get("finalizers") or ()) else Reason.FREE
        return ChangeCause(reason=reason, initial=initial)

    new = essence_of(body, prefix=prefix)
    encoded = encode_essence(new, limit=essence_limit)
    if stored_essence is None:
        if initial_create is not None:
            initial = initial_create
        return ChangeCause(
            reason=Reason.CREATE, initial=initial, new=new, diff=diff(None, new), essence=encoded
        )
    if stored_essence == encoded:
        reason = Reason.RESUME if initial else Reason.NOOP
        return ChangeCause(reason=reason, initial=initial, old=new, new=new, essence=encoded)

    old: Any = None
    if not stored_essence.startswith(DIGEST_PREFIX):
        try:
            old = json.loads(stored_essence)
        except ValueError:
            old = None
        if not isinstance(old, dict):
            old = None
    if old is not None:
        changes = diff(old, new)
        if not changes:  # stored by another encoder; the same data all the same
            reason = Reason.RESUME if initial else Reason.NOOP
            return ChangeCause(reason=reason, initial=initial, old=new, new=new, essence=encoded)
    else:
        # Only a digest (or an unreadable value) was stored: a change, but no detail.
        changes = Diff([DiffItem(DiffOperation.CHANGE, (), None, new)])
    return ChangeCause(
        reason=Reason.UPDATE, initial=initial, old=old, new=new, diff=changes, essence=encoded
    )
