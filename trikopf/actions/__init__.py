"""Acting on one object: invoking handlers, retries and backoff, progress, patches, Events.

Layered under :mod:`trikopf.processing` (which composes a round from these parts) and above the
registry, causes and client.
"""

from __future__ import annotations

from trikopf.actions.execution import Defaults, Outcome, execute_handler
from trikopf.actions.invocation import build_kwargs, invoke
from trikopf.actions.loggers import ObjectLogger
from trikopf.actions.patching import apply_patch, merge_into
from trikopf.actions.posting import (
    EventPoster,
    current_poster,
    event,
    exception,
    info,
    set_current_poster,
    warn,
)
from trikopf.actions.progress import HandlerState, Progress, wall_now

__all__ = [
    "Defaults",
    "EventPoster",
    "HandlerState",
    "ObjectLogger",
    "Outcome",
    "Progress",
    "apply_patch",
    "build_kwargs",
    "current_poster",
    "event",
    "exception",
    "execute_handler",
    "info",
    "invoke",
    "merge_into",
    "set_current_poster",
    "wall_now",
    "warn",
]
