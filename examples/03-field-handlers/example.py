"""A handler for one field: it runs only when that field gets a value or changes."""

from __future__ import annotations

from typing import Any

import trikopf


@trikopf.on.field("kopfexamples", field="spec.field")
def field_fn(old: Any, new: Any, logger: trikopf.Logger, **_: Any) -> dict[str, str]:
    # old and new are the field's own values (None when it is absent).
    logger.info(f"spec.field: {old!r} -> {new!r}")
    return {"change": f"{old!r} -> {new!r}"}
