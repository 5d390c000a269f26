"""The smallest operator: one handler that runs when a KopfExample is created."""

from __future__ import annotations

from typing import Any

import trikopf


@trikopf.on.create("kopfexamples")
def create_fn(spec: trikopf.Spec, name: str, logger: trikopf.Logger, **_: Any) -> dict[str, str]:
    logger.info(f"And here we are! Creating {name} with spec: {dict(spec)}")
    # The returned value is stored in the object's status.create_fn.
    return {"message": f"hello world, {name} is created"}
