"""A fresh default registry, for code that registers handlers without ``registry=`` (as Kopf's files do)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import trikopf


@contextlib.contextmanager
def fresh_default_registry() -> Iterator[trikopf.OperatorRegistry]:
    """Make a new registry the default one inside the block; put the previous one back after."""
    previous = trikopf.get_default_registry()
    registry = trikopf.OperatorRegistry()
    trikopf.set_default_registry(registry)
    try:
        yield registry
    finally:
        trikopf.set_default_registry(previous)
