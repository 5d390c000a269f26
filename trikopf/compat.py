"""Kopf's remaining public names, so that ``import trikopf as kopf`` keeps a Kopf operator working.

The decorators, kwargs, errors and types of Kopf are trikopf's own (see
``docs/migrating-from-kopf.md``). This module adds what only exists for Kopf users' code:
``kopf.configure()`` for logging, ``kopf.operator()``/``kopf.run()`` with Kopf's keywords,
the ``login_with_*`` helpers for ``on.login`` handlers, the ``when=`` combinators
(``not_``/``all_``/``any_``/``none_``), and the old names of a few types. None of it starts
anything on import.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import pathlib
from collections.abc import Callable, Iterable
from typing import Any

import anyio
import attrs

from trikopf import client
from trikopf.cli import configure_logging
from trikopf.client import load_incluster, load_kubeconfig
from trikopf.client.config import INCLUSTER_DIR
from trikopf.client.errors import ConfigError
from trikopf.engines.stopping import StopReason
from trikopf.reactor.running import operate
from trikopf.registry import OperatorRegistry
from trikopf.settings import OperatorSettings

__all__ = [
    "ConnectionInfo",
    "DaemonStoppingReason",
    "LogFormat",
    "LoginError",
    "all_",
    "any_",
    "configure",
    "login_with_kubeconfig",
    "login_with_service_account",
    "none_",
    "not_",
    "operator",
    "run",
]

DaemonStoppingReason = StopReason
"""Kopf's name of :class:`trikopf.StopReason` (``stopped.reason`` of daemons and timers)."""

LoginError = ConfigError
"""What the operator raises when no credentials can be found (Kopf's ``kopf.LoginError``)."""


class ConnectionInfo(client.ConnectionInfo):
    """:class:`trikopf.client.ConnectionInfo` that also takes the field names of Kopf's.

    For ``on.login`` handlers written for Kopf: ``certificate_path``/``certificate_data``,
    ``private_key_path``/``private_key_data`` and ``default_namespace`` are stored under
    trikopf's names (``client_cert_*``, ``client_key_*``, ``namespace``); ``str`` data is
    encoded. ``scheme`` may only be ``"Bearer"`` (or ``None``); Kopf's ``priority`` and
    ``expiration`` are accepted and not used: the first login handler to return credentials
    wins, and credentials are renewed when the API server answers 401.
    """

    __slots__ = ()

    def __init__(
        self,
        *,
        certificate_path: str | None = None,
        certificate_data: str | bytes | None = None,
        private_key_path: str | None = None,
        private_key_data: str | bytes | None = None,
        default_namespace: str | None = None,
        scheme: str | None = None,
        priority: int = 0,
        expiration: Any = None,
        **fields: Any,
    ) -> None:
        if scheme is not None and scheme.lower() != "bearer":
            raise ValueError(f"Only bearer tokens are supported, not scheme={scheme!r}")
        renamed = {
            "client_cert_path": certificate_path,
            "client_cert_data": _pem(certificate_data),
            "client_key_path": private_key_path,
            "client_key_data": _pem(private_key_data),
            "namespace": default_namespace,
        }
        for name, value in renamed.items():
            if value is not None:
                fields[name] = value
        super().__init__(**fields)

    @classmethod
    def of(cls, info: client.ConnectionInfo) -> ConnectionInfo:
        """The same connection as this class (what ``isinstance(x, kopf.ConnectionInfo)`` wants)."""
        return cls(**{field.name: getattr(info, field.name) for field in attrs.fields(type(info))})


def _pem(value: str | bytes | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class LogFormat(str, enum.Enum):
    """The log formats of :func:`configure` (and of ``--log-format``)."""

    PLAIN = "plain"
    FULL = "full"
    JSON = "json"


def configure(
    *,
    debug: bool | None = None,
    verbose: bool | None = None,
    quiet: bool | None = None,
    log_format: LogFormat | str = LogFormat.FULL,
    log_prefix: bool | None = False,
    log_refkey: str | None = None,
) -> None:
    """Set up logging as the CLI does: for operators started with :func:`run` or :func:`operator`.

    ``debug``: everything at DEBUG; ``verbose``: trikopf's own DEBUG lines only; ``quiet``:
    warnings and errors. ``log_prefix`` and ``log_refkey`` are accepted for Kopf's sake and
    change nothing: plain and full lines about an object always start with ``[namespace/name]``,
    and JSON lines carry the object under ``"object"``. Returns at once; starts nothing.
    """
    fmt = log_format.value if isinstance(log_format, LogFormat) else str(log_format)
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    configure_logging(level=level, fmt=fmt)
    if verbose and not debug:
        logging.getLogger("trikopf").setLevel(logging.DEBUG)


def login_with_kubeconfig(**_: Any) -> ConnectionInfo | None:
    """For ``on.login`` handlers: the kubeconfig's credentials, or ``None`` if there is none.

    ``KUBECONFIG`` or ``~/.kube/config``, with its current context. A kubeconfig that exists
    but is broken raises :class:`LoginError` naming the problem.
    """
    if not (os.environ.get("KUBECONFIG") or pathlib.Path("~/.kube/config").expanduser().exists()):
        return None
    return ConnectionInfo.of(load_kubeconfig())


def login_with_service_account(**_: Any) -> ConnectionInfo | None:
    """For ``on.login`` handlers: the pod's service account, or ``None`` outside a cluster."""
    if not os.environ.get("KUBERNETES_SERVICE_HOST") or not (INCLUSTER_DIR / "token").exists():
        return None
    return ConnectionInfo.of(load_incluster())


Predicate = Callable[..., bool]


def not_(fn: Predicate) -> Predicate:
    """A ``when=`` (or label/field value) callback that is true when ``fn`` is false."""

    def negated(*args: Any, **kwargs: Any) -> bool:
        return not fn(*args, **kwargs)

    return negated


def all_(fns: Iterable[Predicate]) -> Predicate:
    """A callback that is true when every one of ``fns`` is (checked in order, lazily)."""
    fns = tuple(fns)

    def every(*args: Any, **kwargs: Any) -> bool:
        return all(fn(*args, **kwargs) for fn in fns)

    return every


def any_(fns: Iterable[Predicate]) -> Predicate:
    """A callback that is true when at least one of ``fns`` is (checked in order, lazily)."""
    fns = tuple(fns)

    def some(*args: Any, **kwargs: Any) -> bool:
        return any(fn(*args, **kwargs) for fn in fns)

    return some


def none_(fns: Iterable[Predicate]) -> Predicate:
    """A callback that is true when none of ``fns`` is."""
    return not_(any_(fns))


def _translate(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Kopf's keywords of ``kopf.operator``/``kopf.run`` as :func:`trikopf.operate` takes them."""
    standalone = kwargs.pop("standalone", None)
    if standalone is False:
        raise ValueError(
            "standalone=False asks for peering, which trikopf does not have yet: operators run "
            "standalone (leave standalone= out or set it to True)"
        )
    for option in ("priority", "peering_name"):
        if kwargs.pop(option, None) is not None:
            raise ValueError(f"{option}= is for peering, which trikopf does not have yet")
    namespace = kwargs.pop("namespace", None)
    if namespace is not None:
        kwargs["namespaces"] = [*kwargs.get("namespaces", ()), namespace]
    liveness = kwargs.pop("liveness_endpoint", None)
    if liveness is not None:
        settings = kwargs.get("settings")
        settings = settings if settings is not None else OperatorSettings()
        settings.serving.liveness = liveness
        kwargs["settings"] = settings
    unknown = sorted(set(kwargs) & {"lifecycle", "indexers", "memories", "vault", "identity"})
    if unknown:
        raise TypeError(
            f"Kopf's internal keywords are not supported: {', '.join(unknown)}; "
            "see docs/migrating-from-kopf.md"
        )
    return kwargs


async def operator(registry: OperatorRegistry | None = None, **kwargs: Any) -> None:
    """Kopf's ``kopf.operator()``: :func:`trikopf.operate` that also takes Kopf's keywords.

    ``standalone=True`` (the only mode so far), ``namespace=`` (added to ``namespaces``) and
    ``liveness_endpoint=`` (``settings.serving.liveness``) are translated; everything else is
    passed on to :func:`trikopf.operate` as it is, so the concurrency contract is the same:
    the whole operator runs inside this call until it is stopped or cancelled.
    """
    await operate(registry, **_translate(kwargs))


def run(
    registry: OperatorRegistry | None = None,
    *,
    backend: str = "trio",
    loop: Any = None,
    **kwargs: Any,
) -> None:
    """Kopf's ``kopf.run()``: run :func:`operator` in a new event loop until it stops.

    Blocks the calling thread; Trio is the default ``backend``, ``"asyncio"`` runs handlers
    that use asyncio. Kopf's ``loop=`` cannot be honoured (trikopf owns its event loop) and is
    refused with a clear error.
    """
    if loop is not None:
        raise TypeError(
            "trikopf runs its own event loop: instead of loop=, give backend='asyncio' (or "
            "start trikopf.operate() inside your own loop)"
        )
    options = _translate(kwargs)
    anyio.run(functools.partial(operate, registry, **options), backend=backend)
