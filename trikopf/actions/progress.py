"""Retry progress of the handlers of one cause, as stored in an annotation on the object.

The annotation ``<prefix>/progress`` holds compact JSON::

    {"purpose": "update", "handlers": {"create_fn": {"started": "2026-...Z", "retries": 2,
     "delayed": "2026-...Z", "done": false, "failed": false, "message": "..."}}}

so that an operator that restarts continues where the last one stopped: done handlers are not
called again, delayed ones wait for their time, failed ones stay failed. Pure: no I/O.

Time here is wall-clock seconds since the epoch. :func:`wall_now` (from ``trikopf._util.clock``)
derives it from the event loop's clock (anchored once per loop), so that retries run on virtual
time in tests with a mock clock and stay immune to wall-clock jumps in production.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

import attrs

from trikopf._util.clock import wall_now

__all__ = ["HandlerState", "Progress", "format_time", "parse_time", "wall_now"]


def format_time(ts: float) -> str:
    """An RFC 3339 UTC timestamp with microseconds."""
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> float | None:
    """The epoch seconds of an RFC 3339 timestamp, or ``None`` for anything unreadable."""
    if not isinstance(value, str):
        return None
    try:
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@attrs.frozen(kw_only=True)
class HandlerState:
    """One handler's progress: when it first started, failed attempts, the next attempt's time."""

    started: float
    retries: int = 0
    delayed: float | None = None
    done: bool = False
    failed: bool = False
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.done or self.failed

    def succeeded(self) -> HandlerState:
        """This state after a successful call: done, nothing delayed, no message.

        The same as ``attrs.evolve(state, done=True, delayed=None, message=None)``, at a third of
        its cost (once per successful handler call).
        """
        return HandlerState(
            started=self.started, retries=self.retries, done=True, failed=self.failed
        )

    def to_raw(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"started": format_time(self.started)}
        if self.retries:
            raw["retries"] = self.retries
        if self.delayed is not None:
            raw["delayed"] = format_time(self.delayed)
        if self.done:
            raw["done"] = True
        if self.failed:
            raw["failed"] = True
        if self.message:
            raw["message"] = self.message
        return raw

    @classmethod
    def from_raw(cls, raw: Any, *, now: float) -> HandlerState:
        if not isinstance(raw, Mapping):
            return cls(started=now)
        retries = raw.get("retries", 0)
        message = raw.get("message")
        return cls(
            started=parse_time(raw.get("started")) or now,
            retries=retries if isinstance(retries, int) and retries >= 0 else 0,
            delayed=parse_time(raw.get("delayed")),
            done=raw.get("done") is True,
            failed=raw.get("failed") is True,
            message=message if isinstance(message, str) else None,
        )


@attrs.frozen(kw_only=True)
class Progress:
    """The progress of all handlers of one cause (``purpose``: create, update, delete, resume)."""

    purpose: str | None = None
    handlers: Mapping[str, HandlerState] = attrs.field(factory=dict)
    initial: bool = False  # the cause began on the operator's first sight (resume handlers)

    def encode(self) -> str:
        raw: dict[str, Any] = {
            "purpose": self.purpose,
            "handlers": {k: v.to_raw() for k, v in self.handlers.items()},
        }
        if self.initial:
            raw["initial"] = True
        return json.dumps(raw, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str | None, *, now: float) -> Progress:
        """Read the annotation; an absent or corrupt one is an empty progress (never an error)."""
        if not value:
            return cls()
        try:
            raw = json.loads(value)
        except ValueError:
            return cls()
        if not isinstance(raw, Mapping):
            return cls()
        handlers = raw.get("handlers")
        purpose = raw.get("purpose")
        return cls(
            initial=raw.get("initial") is True,
            purpose=purpose if isinstance(purpose, str) else None,
            handlers={
                str(k): HandlerState.from_raw(v, now=now)
                for k, v in (handlers.items() if isinstance(handlers, Mapping) else ())
            },
        )
