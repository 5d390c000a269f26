"""Create, update and delete handlers, and the diff an update handler receives."""

from __future__ import annotations

from typing import Any

import trikopf


@trikopf.on.create("kopfexamples")
def create_fn(spec: trikopf.Spec, logger: trikopf.Logger, **_: Any) -> dict[str, Any]:
    logger.info(f"Created with fields: {sorted(spec)}")
    return {"fields": sorted(spec)}


@trikopf.on.update("kopfexamples")
def update_fn(diff: trikopf.Diff, logger: trikopf.Logger, **_: Any) -> dict[str, Any]:
    # Each item is (operation, field path, old value, new value).
    changes = [f"{op} {'.'.join(field)}" for op, field, _old, _new in diff]
    for op, field, old, new in diff:
        logger.info(f"{op} {'.'.join(field)}: {old!r} -> {new!r}")
    return {"changes": changes}


@trikopf.on.delete("kopfexamples")
def delete_fn(name: str, logger: trikopf.Logger, **_: Any) -> None:
    # A delete handler makes trikopf keep a finalizer on the object until this succeeds.
    logger.info(f"{name} is being deleted; cleaning up.")
