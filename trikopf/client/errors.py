"""The client's error tree: every failure at the client boundary is one of these.

::

    ClientError
    ├── ConfigError                 no usable connection: bad kubeconfig, exec plugin failed, ...
    ├── ApiError                    the API server answered with an error Status (.status, .code)
    │   ├── BadRequest              400
    │   ├── Unauthorized            401 (after one re-authentication)
    │   ├── Forbidden               403
    │   ├── NotFound                404
    │   ├── MethodNotAllowed        405
    │   ├── Conflict                409 (stale resourceVersion, failed precondition)
    │   │   └── AlreadyExists       409 with reason AlreadyExists
    │   ├── Gone                    410 (also a watch ERROR event with code 410)
    │   ├── UnsupportedMediaType    415
    │   ├── Invalid                 422
    │   ├── TooManyRequests         429 (.retry_after)
    │   └── ServerError             5xx
    ├── ApiConnectionError          the server could not be reached or the connection broke
    │   └── ApiTimeout              no answer in time
    │       └── WatchStalled        a watch stream stayed open but silent too long
    └── ResourceError               what the user wrote names no resource, or several
        ├── UnknownResource
        └── AmbiguousResource

Messages never contain credentials: exceptions carry the API's Status and the request's
method and path, never headers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trikopf.structs import Resource, Status

__all__ = [
    "AlreadyExists",
    "AmbiguousResource",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeout",
    "BadRequest",
    "ClientError",
    "ConfigError",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "MethodNotAllowed",
    "NotFound",
    "ResourceError",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnknownResource",
    "UnsupportedMediaType",
    "WatchStalled",
    "describe",
    "error_from_status",
]


class ClientError(Exception):
    """The root of everything the Kubernetes client raises."""


class ConfigError(ClientError):
    """The connection cannot be configured: the message says what is wrong and where."""


class ApiError(ClientError):
    """The API server answered with an error; ``status`` is its parsed ``Status`` body."""

    def __init__(
        self,
        status: Status,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status = status
        self.code = status.code or 0
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method and path else ""
        reason = f"{status.reason}: " if status.reason else ""
        message = status.message or "no message"
        super().__init__(f"{self.code} {reason}{message}{where}")


class BadRequest(ApiError):
    """400: the request was malformed (e.g. a bad selector or patch)."""


class Unauthorized(ApiError):
    """401: the credentials were refused, even after re-authenticating once."""


class Forbidden(ApiError):
    """403: the credentials are valid but not allowed to do this."""


class NotFound(ApiError):
    """404: the object (or the resource) does not exist."""


class MethodNotAllowed(ApiError):
    """405: the resource does not support this verb."""


class Conflict(ApiError):
    """409: a stale resourceVersion, a failed precondition, or a concurrent change."""


class AlreadyExists(Conflict):
    """409 AlreadyExists: an object with this name exists already."""


class Gone(ApiError):
    """410: the requested resourceVersion is too old; list again, then watch from the list."""


class UnsupportedMediaType(ApiError):
    """415: e.g. a strategic merge patch sent to a custom resource."""


class Invalid(ApiError):
    """422: the object failed validation; ``status.details.causes`` name the fields."""


class TooManyRequests(ApiError):
    """429: the server asks to slow down; ``retry_after`` is in seconds (or ``None``)."""

    def __init__(
        self,
        status: Status,
        *,
        method: str | None = None,
        path: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, method=method, path=path)
        if retry_after is None and status.details is not None:
            seconds = status.details.retry_after_seconds
            retry_after = float(seconds) if seconds is not None else None
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed; retried with backoff before it reaches the caller."""


class ApiConnectionError(ClientError):
    """The server could not be reached, or the connection broke mid-request.

    ``before_sending`` is true when the request certainly never reached the server (the
    connection could not be made), so that even a POST can be retried safely.
    """

    before_sending: bool = False


class ApiTimeout(ApiConnectionError):
    """No answer within the configured timeout."""


class WatchStalled(ApiTimeout):
    """A watch stream stayed open but delivered nothing within the inactivity timeout."""


class ResourceError(ClientError):
    """What the user wrote does not name exactly one served resource."""


class UnknownResource(ResourceError):
    """Nothing served by the cluster matches what the user wrote."""

    def __init__(self, spec: str, *, hint: str = "") -> None:
        self.spec = spec
        extra = f" ({hint})" if hint else ""
        super().__init__(f"no resource of the cluster matches {spec!r}{extra}")


class AmbiguousResource(ResourceError):
    """Several served resources match what the user wrote."""

    def __init__(self, spec: str, candidates: Sequence[Resource]) -> None:
        self.spec = spec
        self.candidates = list(candidates)
        names = ", ".join(sorted(f"{r.plural}.{r.version}.{r.group}" for r in candidates))
        super().__init__(
            f"{spec!r} matches several resources: {names}; write plural.group to pick one"
        )


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    415: UnsupportedMediaType,
    422: Invalid,
    429: TooManyRequests,
}


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: rare from Kubernetes; the backoff takes over
    return max(0.0, seconds)


def error_from_status(
    code: int,
    raw: Mapping[str, Any] | None,
    *,
    method: str | None = None,
    path: str | None = None,
    retry_after: str | None = None,
    text: str = "",
) -> ApiError:
    """Build the typed error for an HTTP ``code`` and its body (a Status mapping or ``None``)."""
    status: Status
    if raw is not None and raw.get("kind") == "Status":
        try:
            status = Status.from_raw(raw)
        except Exception:
            status = Status(code=code, message=text[:500] or None)
    else:
        status = Status(status="Failure", code=code, message=text[:500] or None)
    if status.code is None:
        status = Status(
            status=status.status,
            message=status.message,
            reason=status.reason,
            code=code,
            details=status.details,
        )
    if code == 409 and status.reason == "AlreadyExists":
        return AlreadyExists(status, method=method, path=path)
    if code == 429:
        return TooManyRequests(
            status, method=method, path=path, retry_after=_parse_retry_after(retry_after)
        )
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else ApiError
    return cls(status, method=method, path=path)


def describe(exc: BaseException) -> str:
    """``Type: message`` of a transport error, with the distinct causes beneath it (TLS, ...)."""
    messages: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text and not any(text in m for m in messages):
            messages.append(text)
        current = current.__cause__ or current.__context__
    detail = " <- ".join(messages[:3])
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
