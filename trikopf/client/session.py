"""Client settings and the HTTP machinery of one TLS identity (requests and watches)."""

from __future__ import annotations

import ssl

import attrs
import httpx

from trikopf.client.auth import Authenticator, build_ssl_context
from trikopf.client.config import ConnectionInfo
from trikopf.client.http11 import Http11Pool
from trikopf.client.transport import WatchTransport

__all__ = ["ClientSettings", "Session", "make_session"]


@attrs.frozen(kw_only=True)
class ClientSettings:
    """How the client talks to the API server. Times are in seconds.

    ``retry_attempts`` counts every attempt (the first included); ``retry_timeout`` bounds the
    time spent on retrying one request. ``rate_limit`` is requests per second on average with
    bursts of ``rate_burst`` (``math.inf`` disables the limiter). ``watch_inactivity_timeout``
    is the default silence after which a watch stream counts as dead (``None``: never).
    ``max_connections`` bounds the connections that requests use at the same time; all of them
    are kept alive for the next requests (watches have a connection each, outside this bound),
    and requests beyond it wait, first come first served, up to ``request_timeout``.
    """

    request_timeout: float = 30.0
    connect_timeout: float = 10.0
    retry_attempts: int = 6
    retry_timeout: float = 120.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    backoff_jitter: float = 0.5
    rate_limit: float = 50.0
    rate_burst: int = 100
    watch_inactivity_timeout: float | None = None
    # 64 KiB (about 40 events of 1.5 KB): the events of one read are parsed and queued before
    # they are handled, and fewer of them at a time stay in the CPU caches (bench_raw_path.py:
    # 15-25% less CPU per event than with 256 KiB; 16-32 KiB are no better).
    watch_read_size: int = 64 * 1024
    max_connections: int = 100
    discovery_refresh_interval: float = 0.0
    user_agent: str = "trikopf"
    event_component: str = "trikopf"


@attrs.define(eq=False)
class Session:
    """The HTTP machinery of one TLS identity: requests, and one transport for watches.

    Requests go through ``lean`` (keep-alive HTTP/1.1, see :mod:`trikopf.client.http11`), or
    through ``http`` (httpx's client) when a proxy is configured and ``lean`` is ``None``.
    """

    http: httpx.AsyncClient
    watch_http: httpx.AsyncClient
    identity: tuple[bytes | None, bytes | None]
    info: ConnectionInfo
    lean: Http11Pool | None = None
    users: int = 0  # requests and watch connections using it right now

    async def aclose(self) -> None:
        """Close every connection of the session (the caller shields and bounds it)."""
        if self.lean is not None:
            await self.lean.aclose()
        await self.http.aclose()
        await self.watch_http.aclose()


def make_session(info: ConnectionInfo, auth: Authenticator, settings: ClientSettings) -> Session:
    """Build (not connect) the httpx clients for ``info`` and the TLS material in force."""
    cert, key = auth.tls_material()
    ssl_context: ssl.SSLContext | None = None
    if info.server.startswith("https://"):
        ssl_context = build_ssl_context(info, cert=cert, key=key)
    timeout = httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout)
    headers = {"User-Agent": settings.user_agent, "Accept": "application/json"}
    http = httpx.AsyncClient(
        base_url=info.server,
        verify=ssl_context if ssl_context is not None else True,
        proxy=info.proxy_url,
        timeout=timeout,
        headers=headers,
        # Watches have their own pool without a limit: each holds its connection for long.
        limits=httpx.Limits(max_connections=settings.max_connections, max_keepalive_connections=20),
        trust_env=False,
    )
    watch_http = httpx.AsyncClient(
        base_url=info.server,
        transport=WatchTransport(ssl_context=ssl_context, proxy_url=info.proxy_url),
        # Bounds the wait for the response head only: the body is read beneath httpx, where
        # the watch's own inactivity timeout applies.
        timeout=timeout,
        headers={**headers, "Accept-Encoding": "identity"},
        trust_env=False,
    )
    lean: Http11Pool | None = None
    if not info.proxy_url:
        lean = Http11Pool(
            info.server,
            ssl_context=ssl_context,
            server_hostname=info.tls_server_name,
            headers=headers,
            # Every connection stays alive: reuse is what makes a burst of patches cheap.
            max_connections=settings.max_connections,
            connect_timeout=settings.connect_timeout,
            timeout=settings.request_timeout,
            pool_timeout=settings.request_timeout,
        )
    return Session(http=http, watch_http=watch_http, identity=(cert, key), info=info, lean=lean)
