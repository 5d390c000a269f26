"""trikopf: Kubernetes operators in Python on Trio-style structured concurrency.

Public names are re-exported here explicitly; ``__all__`` is kept sorted.
"""

from __future__ import annotations

from trikopf import on
from trikopf.actions.posting import event, exception, info, warn
from trikopf.bodies import Annotations, Body, Labels, Logger, Memo, Meta, Patch, Spec, Status
from trikopf.causes import Reason
from trikopf.diffs import Diff, DiffItem, DiffOperation
from trikopf.engines.background import DaemonPatch
from trikopf.engines.stopping import DaemonStopped, StopReason
from trikopf.errors import (
    ErrorsMode,
    HandlerResultError,
    HandlerRetriesError,
    HandlerTimeoutError,
    PermanentError,
    TemporaryError,
)
from trikopf.filters import ABSENT, PRESENT
from trikopf.on import daemon, timer
from trikopf.reactor import StartupError, operate, run
from trikopf.registry import (
    EVERYTHING,
    OperatorRegistry,
    get_default_registry,
    set_default_registry,
)
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource

__version__ = "0.1.0.dev0"

__all__ = [
    "ABSENT",
    "Annotations",
    "Body",
    "DaemonPatch",
    "DaemonStopped",
    "Diff",
    "DiffItem",
    "DiffOperation",
    "EVERYTHING",
    "ErrorsMode",
    "HandlerResultError",
    "HandlerRetriesError",
    "HandlerTimeoutError",
    "Labels",
    "Logger",
    "Memo",
    "Meta",
    "OperatorRegistry",
    "OperatorSettings",
    "PRESENT",
    "Patch",
    "PermanentError",
    "Reason",
    "Resource",
    "Spec",
    "StartupError",
    "Status",
    "StopReason",
    "TemporaryError",
    "__version__",
    "daemon",
    "event",
    "exception",
    "get_default_registry",
    "info",
    "on",
    "operate",
    "run",
    "set_default_registry",
    "timer",
    "warn",
]
