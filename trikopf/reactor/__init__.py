"""The reactor: operator → (resource, namespace) → object task tree, and the watchers.

Public entry points are re-exported by :mod:`trikopf`: :func:`operate` and :func:`run`.
"""

from __future__ import annotations

from trikopf.reactor.discovery import StartupError, UnknownResourcesError
from trikopf.reactor.namespaces import NamespaceSelector
from trikopf.reactor.objects import ObjectScope
from trikopf.reactor.running import ObjectHook, operate, run

__all__ = [
    "NamespaceSelector",
    "ObjectHook",
    "ObjectScope",
    "StartupError",
    "UnknownResourcesError",
    "operate",
    "run",
]
