"""The Kubernetes API client: ``open_client`` and :class:`ApiClient`.

One ``httpx.AsyncClient`` carries requests; watches get their own connection each (see
:mod:`trikopf.client.transport`). Every request passes the token-bucket limiter, carries the
current credentials, re-authenticates once on 401, and is retried with backoff and jitter on
429, 5xx and connection failures, bounded in attempts and in time.
"""

from __future__ import annotations

import datetime
import logging
import math
import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import attrs
import httpx

from trikopf._util.clock import current_time
from trikopf._util.instruments import current_instruments
from trikopf.client import jsonlib
from trikopf.client.auth import Authenticator, CredentialsSource
from trikopf.client.config import ConnectionInfo
from trikopf.client.discovery import DiscoveryCache
from trikopf.client.errors import (
    ApiConnectionError,
    ApiError,
    ApiTimeout,
    ClientError,
    ConfigError,
    ServerError,
    TooManyRequests,
    Unauthorized,
    describe,
    error_from_status,
)
from trikopf.client.http11 import LeanResponse
from trikopf.client.session import ClientSettings, Session, make_session
from trikopf.client.throttle import RateLimiter, backoff_delay
from trikopf.client.watching import WatchStream
from trikopf.structs import ObjectList, ObjectReference, RawBody, Resource

__all__ = ["ApiClient", "ClientSettings", "PatchType", "open_client"]

logger = logging.getLogger("trikopf.client")

PatchType = Literal["merge", "json", "strategic", "apply"]

_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def _now_rfc3339() -> str:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _count_request(verb: str, code: int) -> None:
    """Report one request to the operator's metrics, if it records any (0: no response)."""
    instruments = current_instruments()
    if instruments is not None:
        instruments.api_request(verb, code)


@attrs.define(eq=False)
class ApiClient:
    """A connection to one Kubernetes API server. Create it with :func:`open_client`.

    Safe to share between tasks. Methods are checkpoints; each returns when the server has
    answered (after retries) and raises from :mod:`trikopf.client.errors` otherwise. Cancelling
    the calling task cancels the request. The client starts no background tasks.
    """

    settings: ClientSettings
    _auth: Authenticator
    _session: Session
    _retired: list[Session] = attrs.field(factory=list)
    _limiter: RateLimiter = attrs.field(init=False)
    _discovery: DiscoveryCache = attrs.field(init=False)
    _rng: random.Random = attrs.field(factory=random.Random, init=False)
    _closed: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self._limiter = RateLimiter(self.settings.rate_limit, self.settings.rate_burst)
        self._discovery = DiscoveryCache(
            self._get_json, min_refresh_interval=self.settings.discovery_refresh_interval
        )

    # --- connection ---------------------------------------------------------------------

    @property
    def connection(self) -> ConnectionInfo:
        """The connection info in force (it changes when a login handler re-authenticates)."""
        return self._auth.info

    @property
    def default_namespace(self) -> str:
        """The namespace of the kubeconfig context or the pod (``"default"`` otherwise)."""
        return self._auth.info.namespace

    def _use_session_nowait(self) -> Session | None:
        """The session in force, counted as in use, if it is still current; else ``None``.

        The common case of :meth:`_use_session` without a coroutine: no await, no checkpoint.
        """
        session = self._session
        info = self._auth.info
        if self._auth.tls_material() != session.identity or (
            info is not session.info and info != session.info
        ):
            return None
        session.users += 1
        return session

    async def _use_session(self) -> Session:
        """The session in force, counted as in use until :meth:`_release_session`.

        Exec plugins and login handlers may hand out new credentials or a new client
        certificate: then a new session takes over, and the old one is closed as soon as
        nothing uses it any more (its watches may still run on it for a while).
        """
        identity = self._auth.tls_material()
        info = self._auth.info
        if identity != self._session.identity or (
            info is not self._session.info and info != self._session.info
        ):
            old = self._session
            self._session = make_session(self._auth.info, self._auth, self.settings)
            self._retired.append(old)
            if old.users == 0:
                await self._retire(old)
        self._session.users += 1
        return self._session

    async def _release_session(self, session: Session) -> None:
        session.users -= 1
        if session.users == 0 and any(s is session for s in self._retired):
            await self._retire(session)

    async def _retire(self, session: Session) -> None:
        self._retired = [s for s in self._retired if s is not session]
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await session.aclose()

    async def _headers(self) -> tuple[dict[str, str], int]:
        generation = self._auth.generation
        value = await self._auth.authorization()
        headers = {"Authorization": value} if value else {}
        return headers, generation

    def _extensions(self) -> dict[str, Any]:
        sni = self._auth.info.tls_server_name
        return {"sni_hostname": sni} if sni else {}

    async def aclose(self) -> None:
        """Close every connection (shielded, bounded); the client is unusable afterwards."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            for session in [*self._retired, self._session]:
                await session.aclose()

    # --- the request loop ---------------------------------------------------------------

    def _retriable(self, method: str, error: ClientError) -> bool:
        if isinstance(error, TooManyRequests):
            return True
        if isinstance(error, ServerError):
            return method in _IDEMPOTENT or error.code in (502, 503, 504)
        if isinstance(error, ApiConnectionError):
            return method in _IDEMPOTENT or error.before_sending
        return False

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Send one request (rate-limited, authenticated, retried); returns the parsed JSON.

        Returns ``None`` for an empty body and the text for a non-JSON one (``/healthz``).
        ``body`` is serialised once with the JSON library.
        """
        if self._closed:
            raise ClientError("the client is closed")
        content = None if body is None else jsonlib.dumps(body)
        started = current_time()
        attempt = 0
        reauthenticated = False
        limited = not math.isinf(self._limiter.rate)
        while True:
            if limited:
                await self._limiter.acquire()
            # (Unlimited: no extra checkpoint here, the request itself is one.)
            headers, generation = await self._headers()
            if content is not None:
                headers["Content-Type"] = content_type
            error: ClientError
            session = self._use_session_nowait()
            if session is None:
                session = await self._use_session()
            response: httpx.Response | LeanResponse
            try:
                try:
                    if session.lean is not None:
                        response = await session.lean.request(
                            method, path, params=params, headers=headers, content=content
                        )
                    else:
                        response = await session.http.request(
                            method,
                            path,
                            params=params,
                            content=content,
                            headers=headers,
                            extensions=self._extensions(),
                        )
                finally:
                    if self._retired:
                        await self._release_session(session)
                    else:
                        session.users -= 1  # (what _release_session does then, without a call)
            except httpx.TimeoutException as exc:
                _count_request(method, 0)
                error = ApiTimeout(f"{method} {path}: no answer in time ({type(exc).__name__})")
                if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                    error.before_sending = True
            except httpx.TransportError as exc:
                _count_request(method, 0)
                error = ApiConnectionError(f"{method} {path}: {describe(exc)}")
                if isinstance(exc, httpx.ConnectError):
                    error.before_sending = True
            else:
                _count_request(method, response.status_code)
                if response.status_code < 400:
                    data = response.content
                    if not data:
                        return None
                    if "json" not in response.headers.get("content-type", "application/json"):
                        return response.text  # e.g. /healthz, /readyz, /livez
                    try:
                        return jsonlib.loads(data)
                    except ValueError:
                        raise ApiConnectionError(
                            f"{method} {path}: the server's answer is not valid JSON"
                        ) from None
                error = self._error(method, path, response)
                if isinstance(error, Unauthorized) and not reauthenticated:
                    reauthenticated = True
                    logger.info("The API server refused the credentials; authenticating again.")
                    await self._auth.refresh(generation)
                    continue
            attempt += 1
            if not self._retriable(method, error) or attempt >= self.settings.retry_attempts:
                raise error
            delay = self._delay(attempt - 1, error)
            if current_time() + delay - started > self.settings.retry_timeout:
                raise error
            logger.debug("Retrying %s in %.2fs after: %s", path, delay, error)
            await anyio.sleep(delay)

    def _delay(self, attempt: int, error: ClientError) -> float:
        s = self.settings
        if isinstance(error, TooManyRequests) and error.retry_after is not None:
            # Retry-After is the server's floor; a little jitter on top spreads the clients.
            return error.retry_after + self._rng.random() * s.backoff_jitter * s.backoff_base
        return backoff_delay(
            attempt, base=s.backoff_base, cap=s.backoff_max, jitter=s.backoff_jitter, rng=self._rng
        )

    @staticmethod
    def _error(method: str, path: str, response: httpx.Response | LeanResponse) -> ApiError:
        raw: Any = None
        text = ""
        try:
            raw = jsonlib.loads(response.content) if response.content else None
        except ValueError:
            text = response.content[:500].decode(errors="replace")
        return error_from_status(
            response.status_code,
            raw if isinstance(raw, dict) else None,
            method=method,
            path=path,
            retry_after=response.headers.get("retry-after"),
            text=text,
        )

    async def _get_json(self, path: str) -> Any:
        return await self.request("GET", path)

    # --- discovery ----------------------------------------------------------------------

    async def resources(self, *, refresh: bool = False) -> list[Resource]:
        """Every resource the server serves, in every version (cached; ``refresh`` refetches)."""
        return await self._discovery.resources(refresh=refresh)

    async def resolve(self, spec: str) -> Resource:
        """The one resource that ``spec`` names; see :mod:`trikopf.client.discovery`.

        Refreshes discovery once on a miss (CRDs may be new). Raises ``UnknownResource`` or
        ``AmbiguousResource``.
        """
        return await self._discovery.resolve(spec)

    async def resolve_all(self, spec: str) -> list[Resource]:
        """Every resource that a name, category or glob names (preferred versions)."""
        return await self._discovery.resolve_all(spec)

    # --- verbs --------------------------------------------------------------------------

    def _namespace(self, resource: Resource, namespace: str | None, body: Any = None) -> str | None:
        if not resource.namespaced:
            return None
        if namespace is None and isinstance(body, Mapping):
            namespace = (body.get("metadata") or {}).get("namespace")
        if namespace is None:
            raise ValueError(f"{resource.name} is namespaced: a namespace is needed")
        return namespace

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> RawBody:
        """GET one object; raises ``NotFound`` when it does not exist."""
        ns = self._namespace(resource, namespace)
        result: RawBody = await self.request("GET", resource.path(namespace=ns, name=name))
        return result

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
        resource_version: str | None = None,
    ) -> ObjectList:
        """One page of objects (all namespaces when ``namespace`` is ``None``).

        With ``limit``, pass the result's ``continue_`` back to get the next page. The result's
        ``resource_version`` is where a watch continues without a gap.
        """
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit is not None:
            params["limit"] = str(limit)
        if continue_:
            params["continue"] = continue_
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        ns = namespace if resource.namespaced else None
        body = await self.request("GET", resource.path(namespace=ns), params=params)
        meta = body.get("metadata") or {}
        return ObjectList(
            items=body.get("items") or [],
            resource_version=meta.get("resourceVersion"),
            continue_=meta.get("continue") or None,
            remaining_item_count=meta.get("remainingItemCount"),
            kind=body.get("kind"),
            api_version=body.get("apiVersion"),
        )

    async def list_all(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> ObjectList:
        """Every object, fetched page by page; ``resource_version`` is the first page's."""
        items: list[RawBody] = []
        continue_: str | None = None
        first: ObjectList | None = None
        while True:
            page = await self.list(
                resource,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                limit=page_size,
                continue_=continue_,
            )
            first = first or page
            items.extend(page.items)
            continue_ = page.continue_
            if not continue_:
                break
        return attrs.evolve(first, items=items, continue_=None, remaining_item_count=None)

    async def create(
        self, resource: Resource, body: Mapping[str, Any], namespace: str | None = None
    ) -> RawBody:
        """POST a new object; raises ``AlreadyExists`` or ``Invalid``. Returns it as stored."""
        ns = self._namespace(resource, namespace, body)
        result: RawBody = await self.request("POST", resource.path(namespace=ns), body=body)
        return result

    async def replace(
        self,
        resource: Resource,
        name: str,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        subresource: str | None = None,
    ) -> RawBody:
        """PUT a whole object; its ``metadata.resourceVersion`` makes it conditional (409)."""
        ns = self._namespace(resource, namespace, body)
        path = resource.path(namespace=ns, name=name, subresource=subresource)
        result: RawBody = await self.request("PUT", path, body=body)
        return result

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
    ) -> RawBody:
        """PATCH an object (or its ``status`` subresource); returns the object as stored.

        ``patch_type`` is ``merge`` (RFC 7386), ``json`` (RFC 6902, a list of operations),
        ``strategic`` (built-in kinds only) or ``apply`` (server-side apply, needs
        ``field_manager``).
        """
        if patch_type not in _PATCH_CONTENT_TYPES:
            raise ValueError(f"unknown patch type {patch_type!r}")
        if patch_type == "json" and not isinstance(patch, list | tuple):
            raise ValueError("a JSON patch is a list of operations")
        ns = self._namespace(resource, namespace)
        params = {"fieldManager": field_manager} if field_manager else None
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        path = resource.path(namespace=ns, name=name, subresource=subresource)
        result: RawBody = await self.request(
            "PATCH", path, params=params, body=patch, content_type=_PATCH_CONTENT_TYPES[patch_type]
        )
        return result

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        preconditions: Mapping[str, str] | None = None,
        grace_period_seconds: int | None = None,
    ) -> RawBody | None:
        """DELETE an object; returns the object (still there while finalizers run) or Status.

        ``preconditions`` may hold ``uid`` and/or ``resourceVersion`` (409 if stale).
        """
        ns = self._namespace(resource, namespace)
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        body = options if len(options) > 2 else None
        result: RawBody | None = await self.request(
            "DELETE", resource.path(namespace=ns, name=name), body=body
        )
        return result

    async def post_event(
        self,
        *,
        involved: Mapping[str, Any] | ObjectReference,
        type: str = "Normal",
        reason: str,
        message: str = "",
        action: str | None = None,
    ) -> RawBody:
        """Create a core/v1 Event about an object (a body or an ``ObjectReference``).

        Cluster-scoped objects get their events in ``default``, as kubectl shows them.
        """
        if isinstance(involved, ObjectReference):
            ref = involved
        elif "metadata" not in involved and "name" in involved:
            # Already a flat reference ({apiVersion, kind, name, namespace, uid}).
            ref = ObjectReference.from_raw(involved)
        else:
            ref = ObjectReference.to_object(involved)
        namespace = ref.namespace or "default"
        now = _now_rfc3339()
        if len(message) > 1024:
            message = message[:1021] + "..."
        event: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name or 'object'}.", "namespace": namespace},
            "involvedObject": ref.to_raw(),
            "reason": reason,
            "message": message,
            "type": type,
            "source": {"component": self.settings.event_component},
            "reportingComponent": self.settings.event_component,
            "reportingInstance": self.settings.event_component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "eventTime": None,
            "count": 1,
        }
        if action:
            event["action"] = action
        path = f"/api/v1/namespaces/{namespace}/events"
        result: RawBody = await self.request("POST", path, body=event)
        return result

    # --- watch --------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
        inactivity_timeout: float | None = None,
        resume: bool = True,
    ) -> AsyncIterator[WatchStream]:
        """Watch a resource: ``async with client.watch(r, rv) as events: async for e in events``.

        The first connection is made before the block is entered, so 403/404/410 raise here.
        Iterating yields :class:`~trikopf.structs.WatchEvent` (BOOKMARKs included). When the
        connection drops, or stays silent for ``inactivity_timeout`` seconds, the stream is
        resumed from the last seen resourceVersion (``resume=True``) with backoff, at most
        ``retry_attempts`` times in a row, else raises. A server-side end (its timeout) ends the
        iteration when ``timeout_seconds`` was given and is resumed otherwise. An ERROR event
        raises its typed error (``Gone`` for 410). Starts no task; leaving the block closes
        the connection.
        """
        params: dict[str, str] = {"watch": "true"}
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        ns = namespace if resource.namespaced else None
        if inactivity_timeout is None:
            inactivity_timeout = self.settings.watch_inactivity_timeout
        stream = WatchStream(
            client=self,
            path=resource.path(namespace=ns),
            params=params,
            resource_version=resource_version,
            inactivity_timeout=inactivity_timeout,
            resume=resume,
            ends_by_server=timeout_seconds is not None,
        )
        try:
            await stream.connect()
            yield stream
        finally:
            await stream.aclose()

    async def _open_watch(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[httpx.Response, Session]:
        """Send a watch request; returns the 200 response with its body unread (raises else).

        The session returned stays in use until the caller gives it to
        :meth:`_release_session`, after closing the response.
        """
        started = current_time()
        attempt = 0
        reauthenticated = False
        while True:
            await self._limiter.acquire()
            headers, generation = await self._headers()
            session = await self._use_session()
            request = session.watch_http.build_request(
                "GET", path, params=params, headers=headers, extensions=self._extensions()
            )
            error: ClientError
            try:
                response = await session.watch_http.send(request, stream=True)
            except BaseException as exc:
                await self._release_session(session)
                if isinstance(exc, httpx.TimeoutException):
                    _count_request("WATCH", 0)
                    error = ApiTimeout(f"GET {path}: no answer in time")
                elif isinstance(exc, httpx.TransportError):
                    _count_request("WATCH", 0)
                    error = ApiConnectionError(f"GET {path}: {describe(exc)}")
                else:
                    raise
            else:
                _count_request("WATCH", response.status_code)
                if response.status_code == 200:
                    return response, session
                try:
                    with anyio.fail_after(self.settings.request_timeout):
                        await response.aread()
                except (TimeoutError, httpx.TransportError):
                    pass
                finally:
                    await response.aclose()
                    await self._release_session(session)
                error = self._error("GET", path, response)
                if isinstance(error, Unauthorized) and not reauthenticated:
                    reauthenticated = True
                    logger.info("The API server refused the credentials; authenticating again.")
                    await self._auth.refresh(generation)
                    continue
            attempt += 1
            if not self._retriable("GET", error) or attempt >= self.settings.retry_attempts:
                raise error
            delay = self._delay(attempt - 1, error)
            if current_time() + delay - started > self.settings.retry_timeout:
                raise error
            logger.debug("Retrying %s in %.2fs after: %s", path, delay, error)
            await anyio.sleep(delay)


@asynccontextmanager
async def open_client(
    connection: ConnectionInfo | CredentialsSource | None = None,
    *,
    settings: ClientSettings | None = None,
) -> AsyncIterator[ApiClient]:
    """Open a client: ``async with open_client(load_kubeconfig()) as client: ...``.

    ``connection`` is a :class:`ConnectionInfo`, or a :class:`CredentialsSource` that is asked
    for one now and again after a 401 (the operator's login handlers), or ``None`` to
    :func:`~trikopf.client.config.discover` one. Runs the exec plugin, if any, before returning.
    Starts no background task; leaving the block closes every connection.
    """
    from trikopf.client.config import discover

    if connection is None:
        info: ConnectionInfo | None = discover()
        source: CredentialsSource | None = None
    elif isinstance(connection, ConnectionInfo):
        info, source = connection, None
    else:
        info, source = None, connection
    settings = settings or ClientSettings()
    if settings.retry_attempts < 1:
        raise ConfigError("retry_attempts must be at least 1")
    auth = await Authenticator.start(info, source)
    session = make_session(auth.info, auth, settings)
    client = ApiClient(settings, auth, session)
    try:
        yield client
    finally:
        await client.aclose()
