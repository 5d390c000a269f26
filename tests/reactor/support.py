"""What the reactor's unit tests share: a watch event of a bare object."""

from __future__ import annotations

from trikopf.structs import WatchEvent


def event(uid: str, version: int, type_: str = "MODIFIED") -> WatchEvent:
    """An event of an object that has only a uid, a name (the uid) and a resourceVersion."""
    return WatchEvent(
        type=type_,
        object={"metadata": {"uid": uid, "name": uid, "resourceVersion": str(version)}},
    )
