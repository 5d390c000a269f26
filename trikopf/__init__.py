"""trikopf: Kubernetes operators in Python on Trio-style structured concurrency.

Public names are re-exported here explicitly; ``__all__`` is kept sorted.
"""

from __future__ import annotations

from trikopf import on
from trikopf._util.collector import tune_garbage_collector
from trikopf.actions.posting import event, exception, info, warn
from trikopf.bodies import Annotations, Body, Labels, Logger, Memo, Meta, Patch, Spec, Status
from trikopf.causes import Reason
from trikopf.compat import (
    ConnectionInfo,
    DaemonStoppingReason,
    LogFormat,
    LoginError,
    all_,
    any_,
    configure,
    login_with_kubeconfig,
    login_with_service_account,
    none_,
    not_,
    operator,
    run,
)
from trikopf.diffs import Diff, DiffItem, DiffOperation
from trikopf.engines.background import DaemonPatch
from trikopf.engines.stopping import (
    AsyncDaemonStopped,
    DaemonStopped,
    StopReason,
    SyncDaemonStopped,
)
from trikopf.errors import (
    ErrorsMode,
    HandlerResultError,
    HandlerRetriesError,
    HandlerTimeoutError,
    PermanentError,
    TemporaryError,
)
from trikopf.filters import ABSENT, PRESENT
from trikopf.hierarchies import (
    adjust_namespace,
    adopt,
    append_owner_reference,
    build_object_reference,
    build_owner_reference,
    harmonize_naming,
    label,
    remove_owner_reference,
)
from trikopf.on import daemon, timer
from trikopf.reactor import StartupError, operate
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
    "AsyncDaemonStopped",
    "Body",
    "ConnectionInfo",
    "DaemonPatch",
    "DaemonStopped",
    "DaemonStoppingReason",
    "Diff",
    "DiffItem",
    "DiffOperation",
    "EVERYTHING",
    "ErrorsMode",
    "HandlerResultError",
    "HandlerRetriesError",
    "HandlerTimeoutError",
    "Labels",
    "LogFormat",
    "Logger",
    "LoginError",
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
    "SyncDaemonStopped",
    "TemporaryError",
    "__version__",
    "adjust_namespace",
    "adopt",
    "all_",
    "any_",
    "append_owner_reference",
    "build_object_reference",
    "build_owner_reference",
    "configure",
    "daemon",
    "event",
    "exception",
    "get_default_registry",
    "harmonize_naming",
    "info",
    "label",
    "login_with_kubeconfig",
    "login_with_service_account",
    "none_",
    "not_",
    "on",
    "operate",
    "operator",
    "remove_owner_reference",
    "run",
    "set_default_registry",
    "timer",
    "tune_garbage_collector",
    "warn",
]
