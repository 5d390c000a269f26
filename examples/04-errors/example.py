"""Errors and retries: temporary errors are retried after a delay, permanent ones are not."""

from __future__ import annotations

from typing import Any

import trikopf


@trikopf.on.create("kopfexamples", retries=5)
def create_fn(retry: int, logger: trikopf.Logger, **_: Any) -> dict[str, int]:
    # `retry` counts the earlier attempts of this handler (0 on the first one); the progress
    # is stored on the object, so a restarted operator continues the count.
    if retry < 2:
        raise trikopf.TemporaryError(f"not ready yet (attempt {retry + 1})", delay=0.5)
    logger.info(f"Succeeded on attempt {retry + 1}.")
    return {"attempts": retry + 1}


@trikopf.on.create("kopfexamples")
def validate_fn(spec: trikopf.Spec, **_: Any) -> str:
    if "duration" not in spec:
        # No retries: the object stays as it is and a Warning Event says why.
        raise trikopf.PermanentError("spec.duration is required")
    return "valid"
