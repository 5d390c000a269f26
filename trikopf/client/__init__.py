"""The Kubernetes client: httpx underneath, typed errors, a fast watch.

::

    conn = load_kubeconfig()                       # or load_incluster(), discover()
    async with open_client(conn) as client:
        kex = await client.resolve("kopfexamples")
        page = await client.list(kex, "default")
        async with client.watch(kex, "default", resource_version=page.resource_version) as events:
            async for event in events:
                ...
"""

from __future__ import annotations

from trikopf.client.api import ApiClient, ClientSettings, PatchType, open_client
from trikopf.client.auth import CredentialsSource
from trikopf.client.config import (
    ConnectionInfo,
    ExecConfig,
    discover,
    load_incluster,
    load_kubeconfig,
)
from trikopf.client.errors import (
    AlreadyExists,
    AmbiguousResource,
    ApiConnectionError,
    ApiError,
    ApiTimeout,
    BadRequest,
    ClientError,
    ConfigError,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ResourceError,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnknownResource,
    UnsupportedMediaType,
    WatchStalled,
)
from trikopf.client.watching import WatchStream

__all__ = [
    "AlreadyExists",
    "AmbiguousResource",
    "ApiClient",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeout",
    "BadRequest",
    "ClientError",
    "ClientSettings",
    "ConfigError",
    "Conflict",
    "ConnectionInfo",
    "CredentialsSource",
    "ExecConfig",
    "Forbidden",
    "Gone",
    "Invalid",
    "MethodNotAllowed",
    "NotFound",
    "PatchType",
    "ResourceError",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "UnknownResource",
    "UnsupportedMediaType",
    "WatchStalled",
    "WatchStream",
    "discover",
    "load_incluster",
    "load_kubeconfig",
    "open_client",
]
