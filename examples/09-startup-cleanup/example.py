"""Startup and cleanup handlers, sharing state with every other handler through `memo`.

The startup handler runs before any object is watched: it opens a (pretend) connection pool,
keeps it in `memo`, and adjusts the operator's settings. Object handlers use the pool from
`memo`. The cleanup handler closes it when the operator exits.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs

import trikopf


@attrs.define
class Pool:
    """A stand-in for a database connection pool."""

    name: str
    used: int = 0
    closed: bool = False


@trikopf.on.startup()
async def open_pool(
    memo: trikopf.Memo, settings: trikopf.OperatorSettings, logger: trikopf.Logger, **_: Any
) -> None:
    memo.pool = Pool(name="example-pool")
    # Settings changed here apply to the whole operator: only warnings become k8s Events.
    settings.posting.level = logging.WARNING
    logger.info("The pool is open.")


@trikopf.on.create("kopfexamples")
@trikopf.on.resume("kopfexamples")
def use_pool(memo: trikopf.Memo, name: str, **_: Any) -> dict[str, Any]:
    memo.pool.used += 1
    return {"pool": memo.pool.name, "uses": memo.pool.used}


@trikopf.on.cleanup()
async def close_pool(memo: trikopf.Memo, logger: trikopf.Logger, **_: Any) -> None:
    memo.pool.closed = True
    logger.info(f"The pool is closed after {memo.pool.used} uses.")
