"""Errors that handlers raise to steer retries, and the errors the framework reports for them.

```
Exception
└── HandlerError                 base of everything below
    ├── TemporaryError(delay=)   retry the handler after ``delay`` seconds
    ├── PermanentError           give up on the handler now; never retried
    ├── HandlerTimeoutError      the handler's ``timeout`` has passed since its first attempt
    ├── HandlerRetriesError      the handler's ``retries`` are used up
    └── HandlerResultError       the handler returned a value that cannot be stored in status
```

Any other exception from a handler is treated according to the handler's ``errors=`` mode
(:class:`ErrorsMode`); by default it is temporary and retried after the handler's ``backoff``.
"""

from __future__ import annotations

import enum

__all__ = [
    "ErrorsMode",
    "HandlerError",
    "HandlerResultError",
    "HandlerRetriesError",
    "HandlerTimeoutError",
    "PermanentError",
    "TemporaryError",
]


class ErrorsMode(str, enum.Enum):
    """What an arbitrary exception (not one of ours) from a handler means.

    - ``IGNORED``: log it and consider the handler done; it is not retried.
    - ``TEMPORARY``: retry after the handler's ``backoff`` (the default).
    - ``PERMANENT``: fail the handler now; it is not retried.
    """

    IGNORED = "ignored"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"


class HandlerError(Exception):
    """The base of the errors that handlers raise or that the framework reports for handlers."""


class TemporaryError(HandlerError):
    """Raise it from a handler to have the handler retried after ``delay`` seconds.

    ``delay=None`` falls back to the handler's ``backoff``. The retry is a new attempt that counts
    against the handler's ``retries`` and ``timeout``.
    """

    def __init__(self, message: str = "", *, delay: float | None = 60.0) -> None:
        if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
            raise ValueError(
                f"TemporaryError: delay must be zero or positive seconds, got {delay!r}"
            )
        super().__init__(message)
        self.delay = None if delay is None else float(delay)


class PermanentError(HandlerError):
    """Raise it from a handler to fail the handler now: it is never retried for this cause."""


class HandlerTimeoutError(PermanentError):
    """The handler's ``timeout`` (counted from its first attempt) has passed; it is not retried."""


class HandlerRetriesError(PermanentError):
    """The handler has failed as many times as its ``retries`` allow; it is not retried again."""


class HandlerResultError(PermanentError):
    """The handler returned a value that cannot be stored as JSON in ``status.<handler id>``."""
