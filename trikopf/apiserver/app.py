"""Routing and request handling: HTTP requests in, Kubernetes API answers out."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import anyio
import attrs

from trikopf._util.http_server import Request, Response
from trikopf.apiserver import discovery
from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.faults import Faults, RequestLog, RequestRecord, now
from trikopf.apiserver.http_io import (
    _JSON_HEADERS,
    _TRUE,
    JSON,
    Route,
    _check_accept,
    _decode_continue,
    _encode_continue,
    _injected_failure,
    _method_not_allowed,
    _not_found_path,
    _parse_rv,
    _respond,
    _table_version,
    _tabulated,
    _wants_yaml,
    _without_type,
    error_response,
    http_error_response,
    json_response,
)
from trikopf.apiserver.jsonio import dumps
from trikopf.apiserver.store import Store
from trikopf.apiserver.watch import WatchRequest, stream_watch
from trikopf.apiserver.writes import WriteHandlers

__all__ = ["ApiApp", "error_response", "http_error_response", "json_response"]

logger = logging.getLogger(__name__)

_HEALTH_PATHS = ("/healthz", "/livez", "/readyz")


@attrs.define(eq=False)
class ApiApp(WriteHandlers):
    """The handler behind :func:`serve_http` for one embedded API server."""

    store: Store
    faults: Faults
    requests: RequestLog
    token: str | None = None
    bookmark_interval: float = 60.0
    address: str = "127.0.0.1:0"

    async def handle(self, request: Request) -> Response:
        """Answer one request; never raises for the client's mistakes."""
        response = await self._handle(request)
        self.requests.add(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=request.query,
                status=response.status,
                time=now(),
                user_agent=request.headers.get("user-agent") or "",
            )
        )
        return response

    async def _handle(self, request: Request) -> Response:
        path = request.path
        if path in _HEALTH_PATHS:
            return Response(status=200, headers=[("Content-Type", "text/plain")], body=b"ok")
        if self.token is not None:
            header = request.headers.get("authorization") or ""
            if not hmac.compare_digest(header.encode(), f"Bearer {self.token}".encode()):
                return error_response(ApiError(401, "Unauthorized", reason="Unauthorized"))
        if self.faults.paused:
            await self.faults.wait_until_resumed()
        delay = self.faults.latency_for(request.method, path)
        if delay:
            await anyio.sleep(delay)
        is_watch = request.query_value("watch", "") in _TRUE or "/watch/" in path
        failure = self.faults.take_failure(request.method, path, is_watch)
        if failure is not None:
            return _injected_failure(failure.status, failure.retry_after, failure.message)
        try:
            return self._route(request)
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:
            logger.exception("The embedded API server failed on %s %s", request.method, path)
            return error_response(ApiError(500, f"Internal error occurred: {exc!r}"))

    # ------------------------------------------------------------------ routing

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return json_response(200, discovery.version_info())
        if parts and parts[0] == "openapi":
            return self._openapi(request)
        if parts in (["api"], ["apis"]):
            aggregated = discovery.aggregated_version(request.headers.get("accept"))
            if aggregated is not None:
                document = discovery.aggregated_discovery(
                    self.store.registry, core=parts == ["api"], version=aggregated
                )
                media_type = (
                    f"application/json;g=apidiscovery.k8s.io;v={aggregated};"
                    "as=APIGroupDiscoveryList"
                )
                return Response(
                    status=200,
                    headers=[("Content-Type", media_type), ("Cache-Control", "no-cache, private")],
                    body=dumps(document),
                )
        if parts == ["api"]:
            return json_response(200, discovery.api_versions(self.address))
        if parts == ["apis"]:
            return json_response(200, discovery.api_group_list(self.store.registry))
        if len(parts) == 2 and parts[0] == "apis":
            group_body = discovery.api_group(self.store.registry, parts[1])
            if group_body is None:
                raise _not_found_path()
            return json_response(200, group_body)
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()
        if not rest:
            resources = discovery.api_resource_list(self.store.registry, group, version)
            if resources is None:
                raise _not_found_path()
            return json_response(200, resources)
        route = self._resolve(group, version, rest)
        return self._dispatch(request, route)

    def _resolve(self, group: str, version: str, rest: list[str]) -> Route:
        registry = self.store.registry
        legacy_watch = False
        if rest[0] == "watch":
            legacy_watch = True
            rest = rest[1:]
            if not rest:
                raise _not_found_path()
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace = rest[1]
            rest = rest[2:]
        if len(rest) > 3:
            raise _not_found_path()
        resource = registry.lookup(group, version, rest[0])
        if resource is None:
            raise _not_found_path()
        if resource.namespaced != (namespace is not None) and (
            namespace is not None or len(rest) > 1
        ):
            raise _not_found_path()  # cluster-scoped under a namespace, or a named object
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and (subresource not in resource.subresources or legacy_watch):
            raise _not_found_path()
        return Route(
            resource=resource,
            version=version,
            namespace=namespace,
            name=name,
            subresource=subresource,
            legacy_watch=legacy_watch,
        )

    def _dispatch(self, request: Request, route: Route) -> Response:
        method = request.method
        _check_accept(request)
        if route.legacy_watch:
            if method != "GET":
                raise _method_not_allowed(route)
            return self._watch(request, route)
        if route.subresource == "scale":
            return self._scale(request, route)
        if method in ("GET", "HEAD"):
            if route.name is None:
                if request.query_value("watch", "") in _TRUE:
                    return self._watch(request, route)
                return self._list(request, route)
            return self._get(request, route)
        if route.resource.namespaced and route.namespace is None:
            raise _method_not_allowed(route)
        if method == "POST" and route.name is None:
            return self._create(request, route)
        if method == "PUT" and route.name is not None:
            return self._replace(request, route)
        if method == "PATCH" and route.name is not None:
            return self._patch(request, route)
        if method == "DELETE" and route.subresource is None:
            if route.name is None:
                return self._delete_collection(request, route)
            return self._delete(request, route)
        raise _method_not_allowed(route)

    # ------------------------------------------------------------------ reads

    def _get(self, request: Request, route: Route) -> Response:
        assert route.name is not None
        obj = self.store.get(route.resource, route.namespace or "", route.name)
        table = _table_version(request)
        if table and route.subresource is None:
            return json_response(200, self._table(request, route, [obj], table, False, None, None))
        return _respond(request, 200, self._out(route, obj))

    def _check_not_too_large(self, asked: int) -> None:
        if asked > self.store.rv:
            raise ApiError(
                504,
                f"Too large resource version: {asked}, current: {self.store.rv}",
                reason="Timeout",
                details={
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ],
                    "retryAfterSeconds": 1,
                },
            )

    def _list(self, request: Request, route: Route) -> Response:
        resource = route.resource
        matcher = self._matcher(request, route)
        limit_text = request.query_value("limit", "") or ""
        try:
            limit = int(limit_text) if limit_text else 0
        except ValueError:
            raise ApiError(400, f"limit: Invalid value: {limit_text!r}") from None
        rv_text = request.query_value("resourceVersion", "") or ""
        if rv_text not in ("", "0"):
            self._check_not_too_large(_parse_rv(rv_text))
        list_rv = self.store.rv
        start: tuple[str, str] | None = None
        token = request.query_value("continue", "") or ""
        if token:
            list_rv, start = _decode_continue(token)
            log_floor = self.store.log(resource.key).compacted_rv
            if list_rv < log_floor:
                raise ApiError(
                    410,
                    "The provided continue parameter is too old to display a consistent list"
                    " result. You can start a new list without the continue parameter.",
                    reason="Expired",
                )
        items: list[dict[str, Any]] = []
        next_token: str | None = None
        remaining = 0
        if token:
            # Later pages show the cluster as it was at the first page's version.
            objects = self.store.objects_at(resource, route.namespace, list_rv)
        else:
            objects = list(self.store.iter_objects(resource, route.namespace))
        for obj in objects:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if start is not None and key <= start:
                continue
            if matcher is not None and not matcher(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
        if limit and remaining:
            last = items[-1]["metadata"]
            next_token = _encode_continue(list_rv, (last.get("namespace", ""), last["name"]))
        table = _table_version(request)
        if table:
            body = self._table(request, route, items, table, True, next_token, remaining or None)
            body["metadata"]["resourceVersion"] = str(list_rv)
            return json_response(200, body)
        api_version = resource.api_version(route.version)
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if next_token:
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = remaining
        if _wants_yaml(request):
            if resource.custom:
                out_items = [self._out(route, obj) for obj in items]
            else:
                out_items = [_without_type(obj) for obj in items]
            body = {
                "kind": resource.list_kind,
                "apiVersion": api_version,
                "metadata": metadata,
                "items": out_items,
            }
            return _respond(request, 200, body)
        # JSON lists are assembled from each object's stored bytes, serialised only once.
        store = self.store
        storage_head = b'{"apiVersion":%s,"kind":%s,' % (
            dumps(resource.api_version()),
            dumps(resource.kind),
        )
        parts: list[bytes] = []
        for obj in items:
            raw = store.raw_of(resource, obj)
            if resource.custom:
                parts.append(
                    raw if api_version == resource.api_version() else dumps(self._out(route, obj))
                )
            elif raw.startswith(storage_head):
                parts.append(b"{" + raw[len(storage_head) :])  # no kind/apiVersion in items
            else:
                parts.append(dumps(_without_type(obj)))
        data = b'{"kind":%s,"apiVersion":%s,"metadata":%s,"items":[%s]}' % (
            dumps(resource.list_kind),
            dumps(api_version),
            dumps(metadata),
            b",".join(parts),
        )
        return Response(status=200, headers=list(_JSON_HEADERS), body=data)

    def _table(
        self,
        request: Request,
        route: Route,
        objects: list[dict[str, Any]],
        api_version: str,
        is_list: bool,
        continue_: str | None,
        remaining: int | None,
    ) -> dict[str, Any]:
        from trikopf.apiserver import tables

        resource = route.resource
        columns = resource.printer_columns.get(route.version) if resource.custom else None
        try:
            return tables.render_table(
                [self._out(route, obj) for obj in objects],
                kind_is_list=is_list,
                printer_columns=list(columns)
                if columns is not None
                else ([] if resource.custom else None),
                resource_version=str(self.store.rv),
                continue_=continue_,
                group=resource.group,
                kind=resource.kind,
                include_object=request.query_value("includeObject", "Metadata") or "Metadata",
                api_version=api_version,
                remaining_item_count=remaining,
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    def _watch(self, request: Request, route: Route) -> Response:
        matcher = self._matcher(request, route)
        if route.name is not None:
            name = route.name
            inner = matcher

            def matcher(obj: dict[str, Any]) -> bool:
                return obj["metadata"]["name"] == name and (inner is None or inner(obj))

        rv_text = request.query_value("resourceVersion", "") or ""
        if rv_text not in ("", "0"):
            # A version from the future (e.g. from before a restart without a state file)
            # would otherwise wait silently for events that never come: the client must relist.
            self._check_not_too_large(_parse_rv(rv_text))
        timeout_text = request.query_value("timeoutSeconds", "") or ""
        try:
            timeout = float(int(timeout_text)) if timeout_text else None
        except ValueError:
            raise ApiError(400, f"timeoutSeconds: Invalid value: {timeout_text!r}") from None
        watch_request = WatchRequest(
            resource=route.resource,
            version=route.version,
            namespace=route.namespace,
            matcher=matcher,
            resource_version=rv_text,
            allow_bookmarks=(request.query_value("allowWatchBookmarks", "") or "") in _TRUE,
            timeout=timeout if timeout and timeout > 0 else None,
            bookmark_interval=self.bookmark_interval,
            send_initial_events=(request.query_value("sendInitialEvents", "") or "") in _TRUE,
        )
        store, faults = self.store, self.faults
        table = _table_version(request)
        if table and route.subresource is None:
            # kubectl get --watch asks for Tables: each event carries a one-row Table.
            def render(obj: dict[str, Any]) -> dict[str, Any]:
                return self._table(request, route, [obj], table, False, None, None)

            return Response(
                status=200,
                headers=[("Content-Type", JSON), ("Cache-Control", "no-cache, private")],
                stream=lambda: _tabulated(stream_watch(store, faults, watch_request), render),
            )
        return Response(
            status=200,
            headers=[("Content-Type", JSON), ("Cache-Control", "no-cache, private")],
            stream=lambda: stream_watch(store, faults, watch_request),
        )

    # ------------------------------------------------------------------ openapi

    def _openapi(self, request: Request) -> Response:
        try:
            from trikopf.apiserver import openapi  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            raise _not_found_path() from None
        resources = []
        for resource in self.store.registry.all():
            for version in resource.versions:
                resources.append(
                    openapi.OpenApiResource(
                        group=resource.group,
                        version=version,
                        kind=resource.kind,
                        plural=resource.plural,
                        namespaced=resource.namespaced,
                        schema=resource.schemas.get(version) if resource.custom else None,
                        subresources=frozenset(resource.subresources),
                    )
                )
        # kubectl 1.27 reads /openapi/v2 only as protobuf: the Accept header decides.
        answer = openapi.handle_openapi(
            request.path, resources, accept=request.headers.get("accept")
        )
        if answer is None:
            raise _not_found_path()
        status, body, content_type = answer
        return Response(status=status, headers=[("Content-Type", content_type)], body=body)
