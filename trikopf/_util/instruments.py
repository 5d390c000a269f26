"""Where the operator's layers report what they do, for metrics; a no-op unless someone listens.

Every layer (the client, the watchers, the handler executor) may report here, so this module sits
at the bottom and imports nothing of trikopf. The operator installs one :class:`Instruments`
object (its metrics) in a context variable before it starts its tasks; tasks inherit it. When no
metrics are configured nothing is installed, and each reporting site costs one context-variable
read (done once per stream or request where possible), never a call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

__all__ = ["Instruments", "current_instruments", "set_instruments"]


class Instruments:
    """The reporting interface; this base class ignores everything (subclasses record it).

    Methods are called in the operator's tasks (never in threads), must not block and must not
    raise: they are plain counter increments.
    """

    def watch_events(self, watch: str) -> Callable[[], None]:
        """A callable that counts one received watch event of ``watch`` (resolved once)."""
        return _nothing

    def watch_reconnected(self, watch: str) -> None:
        """A watch stream of ``watch`` failed or ended and is opened again."""

    def watch_relisted(self, watch: str) -> None:
        """``watch`` had to list again after its resourceVersion expired (410 Gone)."""

    def api_request(self, verb: str, code: int) -> None:
        """One API request ended with the HTTP status ``code`` (0: no response)."""

    def round_started(self, waited: float) -> None:
        """A processing round starts ``waited`` seconds after its first event arrived."""

    def handler_finished(self, handler_id: str, outcome: str, seconds: float) -> None:
        """One call of a handler ended: ``success``, ``retry``, ``failure`` or ``ignored``."""


def _nothing() -> None:
    return None


_CURRENT: contextvars.ContextVar[Instruments | None] = contextvars.ContextVar(
    "trikopf_instruments", default=None
)


def current_instruments() -> Instruments | None:
    """The instruments of the running operator, or ``None`` when nothing records."""
    return _CURRENT.get()


def set_instruments(instruments: Instruments | None) -> contextvars.Token[Instruments | None]:
    """Install ``instruments`` for this context (and the tasks it starts from now on)."""
    return _CURRENT.set(instruments)
